"""Local state that heals itself: the flock-based apply lock, force-unlock, unusable state folders, torn journals.

Real processes take the lock and die, so what is checked is the kernel's release, not a simulation of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from finetune.errors import FinetuneError
from finetune.state import ApplyLock, Journal, LockInfo, check_state_folder, target_slug

REPO = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from finetune.state import ApplyLock

    lock = ApplyLock(Path(sys.argv[1]), "apply")
    lock.acquire()
    if sys.argv[2] == "fork":  # a child that outlives its parent, like a data worker pool
        ready, tell = os.pipe()
        child = os.fork()
        if child == 0:  # the at-fork hooks have run by now
            os.write(tell, b"x")
            time.sleep(60)
            os._exit(0)
        os.read(ready, 1)
        print(child, flush=True)
    print("locked", flush=True)
    time.sleep(60)
""")


class Holder:
    """A separate process holding the lock until killed."""

    def __init__(self, path: Path, mode: str = "plain") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.child: int | None = None
        line = self.proc.stdout.readline().strip()
        if mode == "fork":
            self.child = int(line)
            line = self.proc.stdout.readline().strip()
        assert line == "locked", self.proc.stderr.read()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def kill_child(self) -> None:
        if self.child:
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.child = None


@pytest.fixture
def holder():
    started: list[Holder] = []

    def start(path: Path, mode: str = "plain") -> Holder:
        started.append(Holder(path, mode))
        return started[-1]

    yield start
    for h in started:
        h.kill_child()
        h.kill()


def write_lock(path: Path, content: str | dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


def mine(path: Path) -> bool:
    info = LockInfo.parse(path.read_text())
    return info is not None and info.pid == os.getpid() and info.host == socket.gethostname()


# ---- the lock --------------------------------------------------------------------------------------------------------
def test_lock_of_a_sigkilled_holder_is_taken_over_without_force_unlock(tmp_path, holder):
    path = tmp_path / "runs" / "t" / "apply.lock"
    first = holder(path)
    assert LockInfo.parse(path.read_text()).pid == first.pid
    first.kill()
    assert path.exists()  # SIGKILL left the file behind ...
    lock = ApplyLock(path)
    lock.acquire()  # ... but not the flock
    assert mine(path)
    assert lock.taken_over is not None and lock.taken_over.pid == first.pid
    lock.release()
    assert not path.exists()


def test_live_holder_is_refused_and_named(tmp_path, holder):
    path = tmp_path / "apply.lock"
    live = holder(path)
    with pytest.raises(FinetuneError) as refused:
        ApplyLock(path).acquire()
    message = str(refused.value)
    assert f"pid {live.pid}" in message and socket.gethostname() in message and "apply" in message
    assert "started" in message and "wait for it" in message
    assert LockInfo.parse(path.read_text()).pid == live.pid  # the refusal did not touch the holder's file
    live.kill()
    with ApplyLock(path):
        assert mine(path)


def test_a_forked_child_does_not_keep_a_dead_applys_lock(tmp_path, holder):
    path = tmp_path / "apply.lock"
    parent = holder(path, "fork")
    parent.kill()
    os.kill(parent.child, 0)  # the child still runs
    with ApplyLock(path):
        assert mine(path)


def test_the_same_process_cannot_take_it_twice_through_two_locks(tmp_path):
    path = tmp_path / "apply.lock"
    with ApplyLock(path), pytest.raises(FinetuneError, match=f"pid {os.getpid()}"):
        ApplyLock(path, "destroy").acquire()
    assert not path.exists()


@pytest.mark.parametrize("content", [
    {"pid": "abc", "host": socket.gethostname(), "started": "x", "command": "apply"},
    "not json at all {",
    "",
    {"host": socket.gethostname()},
    "[1, 2]",
    {"pid": True, "host": "elsewhere", "started": "x", "command": "apply"},
], ids=["pid-abc", "not-json", "empty", "missing-keys", "not-an-object", "pid-bool"])
def test_garbage_lock_file_is_stale_and_taken_over(tmp_path, content):
    path = tmp_path / "apply.lock"
    write_lock(path, content)
    lock = ApplyLock(path)
    assert lock.read() is None
    lock.acquire()
    assert mine(path) and lock.held
    lock.release()
    assert not path.exists() and not lock.held


def test_lock_naming_a_live_unrelated_pid_without_the_flock_is_taken_over(tmp_path):
    path = tmp_path / "apply.lock"
    write_lock(path, {"pid": 1, "host": socket.gethostname(), "started": "2024-01-01T00:00:00+00:00",
                      "command": "apply"})
    assert LockInfo(1, socket.gethostname(), "", "apply").alive  # pid 1 lives, yet holds no flock
    with ApplyLock(path) as lock:
        assert mine(path)
        assert lock.taken_over.pid == 1


def test_lock_from_another_host_is_refused_naming_it_until_force_unlock(tmp_path):
    path = tmp_path / "apply.lock"
    other = {"pid": 4242, "host": "build-agent-7.example", "started": "2024-01-01T00:00:00+00:00",
             "command": "destroy"}
    write_lock(path, other)
    with pytest.raises(FinetuneError) as refused:
        ApplyLock(path).acquire()
    message = str(refused.value)
    assert "build-agent-7.example" in message and "pid 4242" in message and "force-unlock" in message
    assert json.loads(path.read_text()) == other  # left as it was
    unlocked = ApplyLock(path).force_unlock()
    assert unlocked.removed and unlocked.previous.host == "build-agent-7.example"
    with ApplyLock(path):
        assert mine(path)


def test_a_lock_file_replaced_between_open_and_flock_is_retried(tmp_path):
    path = tmp_path / "apply.lock"
    write_lock(path, "")
    old = os.open(path, os.O_RDWR)
    path.unlink()  # a holder released it after we opened it: we would flock a file nobody can see
    lock = ApplyLock(path)
    real_open = lock._open
    opened: list[int] = []

    def racing_open(flags: int) -> int:
        opened.append(flags)
        return old if len(opened) == 1 else real_open(flags)

    lock._open = racing_open
    lock.acquire()
    assert len(opened) == 2
    assert (os.fstat(lock._fd).st_ino, os.fstat(lock._fd).st_dev) == (path.stat().st_ino, path.stat().st_dev)
    assert mine(path)
    lock.release()


def test_force_unlock_refuses_a_live_holder_and_removes_a_dead_ones(tmp_path, holder):
    path = tmp_path / "apply.lock"
    assert ApplyLock(path).force_unlock() == (False, None)
    live = holder(path)
    with pytest.raises(FinetuneError, match=f"pid {live.pid}"):
        ApplyLock(path).force_unlock()
    live.kill()
    unlocked = ApplyLock(path).force_unlock()
    assert unlocked.removed and unlocked.previous.pid == live.pid
    assert not path.exists()


# ---- the CLI ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path, isolated_env):
    shutil.copy(REPO / "examples" / "local-quickstart.yaml", tmp_path / "spec.yaml")
    shutil.copytree(REPO / "examples" / "data", tmp_path / "data")
    return tmp_path


def lock_path(project: Path) -> Path:
    root = (project / ".finetune").resolve()
    return root / "runs" / target_slug("quickstart", f"local:{root}") / "apply.lock"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from finetune.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_cli_force_unlock_without_a_lock(project, capsys):
    code, out, err = run_cli(capsys, "force-unlock", str(project / "spec.yaml"))
    assert code == 0, err
    assert "No lock held." in out


def test_cli_force_unlock_removes_a_stale_garbage_lock(project, capsys):
    path = lock_path(project)
    write_lock(path, '{"pid": "abc"')
    code, out, err = run_cli(capsys, "force-unlock", str(project / "spec.yaml"))
    assert code == 0, err
    assert f"Removed {path}" in out
    assert not path.exists()


def test_cli_force_unlock_refuses_a_live_holder(project, capsys, holder):
    path = lock_path(project)
    path.parent.mkdir(parents=True)
    live = holder(path)
    code, out, err = run_cli(capsys, "force-unlock", str(project / "spec.yaml"))
    assert code == 1
    assert f"pid {live.pid}" in err and "Traceback" not in err
    assert LockInfo.parse(path.read_text()).pid == live.pid


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"], ["force-unlock"]])
def test_cli_state_folder_that_is_a_file_exits_1_naming_it(project, capsys, command):
    state = project / ".finetune"
    state.write_text("not a folder")
    code, out, err = run_cli(capsys, command[0], str(project / "spec.yaml"), *command[1:])
    assert code == 1, err
    assert str(state.resolve()) in err and "not a folder" in err
    assert "internal error" not in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads and writes a mode-000 folder")
def test_cli_unreadable_state_folder_exits_1_naming_it(project, capsys):
    state = project / ".finetune"
    state.mkdir()
    state.chmod(0)
    try:
        code, out, err = run_cli(capsys, "plan", str(project / "spec.yaml"))
    finally:
        state.chmod(0o755)
    assert code == 1, err
    assert str(state.resolve()) in err and "internal error" not in err


# ---- state folders ---------------------------------------------------------------------------------------------------
def test_lock_and_journal_under_a_file_raise_a_finetune_error(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("")
    with pytest.raises(FinetuneError, match="is a file, not a folder") as refused:
        ApplyLock(blocker / "slug" / "apply.lock").acquire()
    assert str(blocker) in str(refused.value)
    with pytest.raises(FinetuneError, match="is a file, not a folder"):
        Journal(blocker / "slug" / "journal.jsonl").record("job.finetune", "submitted", {"name": "j"})
    with pytest.raises(FinetuneError, match=str(blocker)):
        ApplyLock(blocker / "slug" / "apply.lock").force_unlock()


def test_check_state_folder_creates_only_when_asked(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_state_folder(target) == target and not target.exists()
    check_state_folder(target, create=True)
    assert target.is_dir()


# ---- the journal -----------------------------------------------------------------------------------------------------
def test_torn_journal_line_does_not_spoil_the_next_entry(tmp_path):
    journal = Journal(tmp_path / "runs" / "journal.jsonl")
    journal.record("compute.gpu", "submitted", {"name": "c1", "api_key": "s3cret"})
    with journal.path.open("a") as out:
        out.write('{"time": "2024-01-01T00:00:00+00:00", "address": "job.fine')  # killed mid-write
    journal.record("job.finetune", "submitted", {"name": "j1"})
    lines = journal.path.read_text().splitlines()
    assert lines[1].startswith('{"time": "2024') and not lines[1].endswith("}")
    assert json.loads(lines[2])["handle"] == {"name": "j1"}
    assert journal.path.read_text().endswith("\n")
    entries = journal.entries()
    assert [(e["address"], e["event"]) for e in entries] == [("compute.gpu", "submitted"),
                                                             ("job.finetune", "submitted")]
    assert entries[0]["handle"]["api_key"] == "<redacted>"


def test_journal_skips_lines_that_do_not_parse(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'\xff\xfe garbage\n[1]\n\n{"address": "a", "event": "e", "handle": {}}\n{"addr')
    journal = Journal(path)
    assert journal.entries() == [{"address": "a", "event": "e", "handle": {}}]
    journal.record("b", "done")
    assert [e["address"] for e in journal.entries()] == ["a", "b"]
    assert Journal(tmp_path / "missing.jsonl").entries() == []
