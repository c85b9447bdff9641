"""Local bookkeeping for apply: the journal of operation handles and the per-target lock.

The target (the workspace, or the local state) stays the source of truth. The journal is an audit log of operation
handles (job names, LRO URLs), written before each wait, so a killed apply's operations stay visible; resume does
not replay it but re-observes the target, which finds the same resources by their tags. A torn last line (a kill in
the middle of a write) never spoils the next entry, and lines that do not parse are skipped when reading.

The lock keeps two applies of the same spec from racing. It is an OS file lock (flock) held on an open descriptor
for the life of the apply, so the kernel releases it when the holder dies, however it dies: a lock whose holder is
gone is taken over without `force-unlock`. The file also holds JSON {pid, host, started, command} for humans, and to
recognise a lock written on another host through a shared folder, which only `force-unlock` removes.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from finetune.errors import FinetuneError

try:  # POSIX only; elsewhere the lock falls back to an exclusively created file
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

SECRET_KEYS = ("key", "token", "secret", "password", "authorization", "sas")
ELSEWHERE = "or set target.local.state_dir in the spec to another folder"


def _redact(value: Any) -> Any:
    """Never journal a secret, whatever a backend hands us."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if any(s in k.lower() for s in SECRET_KEYS) else _redact(v)) for k, v in
                value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def target_slug(spec_name: str, target_identity: str) -> str:
    digest = hashlib.sha256(f"{target_identity}|{spec_name}".encode()).hexdigest()[:12]
    return f"{spec_name}-{digest}"


# ---- the state folder ------------------------------------------------------------------------------------------------
def state_error(path: Path, exc: OSError | None = None, what: str = "", hint: str = "") -> FinetuneError:
    """An OSError on local state, as the user's problem to fix (exit 1), never an internal error."""
    reason = what or (exc.strerror if exc is not None and exc.strerror else str(exc))
    if not hint:
        access = isinstance(exc, PermissionError)
        hint = (f"give this user read and write access to it, {ELSEWHERE}" if access
                else f"check that it is a folder this user can write, {ELSEWHERE}")
    return FinetuneError(f"local state at {path} cannot be used: {reason}", hint=hint)


def check_state_folder(path: Path, *, create: bool = False) -> Path:
    """`path` is, or can be created as, a folder this process can read and write; else a FinetuneError naming it."""
    probe = path
    while True:
        try:
            mode = probe.stat().st_mode
            break
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                raise state_error(path, what="no existing folder above it") from None
            probe = probe.parent
        except OSError as exc:
            raise state_error(probe, exc) from None
    if not stat.S_ISDIR(mode):
        what = "it is a file, not a folder" if probe == path else f"{probe} is a file, not a folder"
        raise state_error(path, what=what, hint=f"move or remove {probe}, {ELSEWHERE}")
    access = f"give this user read and write access to {probe}, {ELSEWHERE}"
    if probe == path and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise state_error(path, what="the folder is not readable and writable by this user", hint=access)
    if probe != path and not os.access(probe, os.W_OK | os.X_OK):
        raise state_error(path, what=f"cannot create it: {probe} is not writable by this user", hint=access)
    if create and probe != path:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise state_error(path, exc) from None
    return path


# ---- the journal -----------------------------------------------------------------------------------------------------
class Journal:
    """Append-only JSON lines: {time, address, event, handle}. Written and synced before waiting on an operation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, address: str, event: str, handle: dict[str, Any] | None = None) -> None:
        entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "address": address, "event": event,
                 "handle": _redact(handle or {})}
        line = (json.dumps(entry, default=str) + "\n").encode()
        with self._lock:
            check_state_folder(self.path.parent, create=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as exc:
                raise state_error(self.path, exc) from None
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # the last entry was torn by a kill: start this one on a fresh line
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as exc:
                raise state_error(self.path, exc) from None
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """The entries that parse; a torn or garbled line is skipped."""
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise state_error(self.path, exc) from None
        found = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found.append(entry)
        return found


# ---- the last result of a step ---------------------------------------------------------------------------------------
class LastResult:
    """One JSON document replaced whole (the last smoke test's question, expected answer and answer, which `status`
    shows: the target keeps no record of them). Callers write named fields only, never a backend's raw outputs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, data: dict[str, Any]) -> None:
        check_state_folder(self.path.parent, create=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            temporary.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)  # readers see the old document or the new one, never half of one
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise state_error(self.path, exc) from None

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: shown as no result rather than failing `status`
        return data if isinstance(data, dict) else None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# ---- the lock --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started: str
    command: str

    @property
    def alive(self) -> bool | None:
        """True/False when it can be told (same host), None otherwise."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except (OverflowError, OSError):
            return False
        return True

    @classmethod
    def parse(cls, text: str | bytes) -> LockInfo | None:
        """The holder a lock file names, or None for anything else (empty, not JSON, missing keys, odd types)."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        fields = [data.get(k) for k in ("host", "started", "command")]
        if not all(isinstance(f, str) for f in fields):
            return None
        return cls(pid, *fields)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}, command {self.command}"


class Unlocked(NamedTuple):
    """What `ApplyLock.force_unlock` did: whether a lock file was removed, and whom it named."""

    removed: bool
    previous: LockInfo | None


_HELD: set[int] = set()  # descriptors holding a flock in this process


def _forget_in_child() -> None:
    """A forked child (a data worker pool) must not keep the lock alive after the apply that forked it dies."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class ApplyLock:
    """An exclusive lock per target: an flock on the lock file, held for the life of the command.

    The kernel drops the flock when its holder exits, even by SIGKILL, so a lock file nobody holds is stale and is
    taken over. One written on another host (a shared folder) is refused: this host cannot tell if it still runs.
    """

    def __init__(self, path: Path, command: str = "apply") -> None:
        self.path = path
        self.command = command
        self.taken_over: LockInfo | None = None  # the stale holder this acquire replaced, when it named one
        self._fd: int | None = None
        self._owner = 0

    @property
    def held(self) -> bool:
        return self._fd is not None and self._owner == os.getpid()

    def read(self) -> LockInfo | None:
        try:
            return LockInfo.parse(self.path.read_bytes())
        except OSError:
            return None

    # ---- acquire / release ----------------------------------------------------------------------------------------
    def acquire(self) -> None:
        if self.held:
            return
        check_state_folder(self.path.parent, create=True)
        if fcntl is None:  # pragma: no cover - not POSIX
            self._acquire_without_flock()
            return
        for _ in range(50):
            fd = self._open(os.O_RDWR | os.O_CREAT)
            try:
                taken = self._flock(fd)
            except FinetuneError:
                os.close(fd)
                raise
            if not taken:
                holder = _read_fd(fd)
                os.close(fd)
                raise FinetuneError(self._running_message(holder), hint=self._running_hint())
            if not self._same_file(fd):  # released (unlinked) or replaced between our open and our flock: again
                os.close(fd)
                continue
            previous = _read_fd(fd)
            if previous is not None and previous.host != socket.gethostname():
                os.close(fd)
                raise FinetuneError(
                    f"the lock {self.path} was written on another host: {previous.describe()}",
                    hint=f"this state folder is shared with {previous.host}; if no {previous.command} runs there, "
                         "remove the lock with `finetune force-unlock SPEC`")
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(self._info()).encode(), 0)
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                raise state_error(self.path, exc) from None
            self.taken_over = previous
            self._fd, self._owner = fd, os.getpid()
            _HELD.add(fd)
            return
        raise FinetuneError(f"the lock {self.path} keeps being replaced by another process",
                            hint="another finetune command is starting and stopping: wait for it, then run again")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None or self._owner != os.getpid():  # not held, or a forked copy (its descriptor closed at fork)
            return
        if fcntl is None:  # pragma: no cover - not POSIX
            self.path.unlink(missing_ok=True)
            return
        _HELD.discard(fd)
        try:
            if self._same_file(fd):
                self.path.unlink(missing_ok=True)  # still holding the flock: a waiter sees the inode change
        except OSError:
            pass
        finally:
            os.close(fd)

    def force_unlock(self) -> Unlocked:
        """Remove the lock file unless a live local process holds it (then refuse, naming it)."""
        if fcntl is None:  # pragma: no cover - not POSIX
            return self._force_without_flock()
        for _ in range(50):
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                return Unlocked(False, None)
            except OSError as exc:
                check_state_folder(self.path.parent)  # names a file in the way, or an unreadable folder
                raise state_error(self.path, exc) from None
            try:
                if not self._flock(fd):
                    raise FinetuneError(f"a running process holds the lock: {self._holder_text(_read_fd(fd))}",
                                        hint="wait for it to finish, or stop that process first; force-unlock "
                                             "never breaks a lock a running process holds")
                if not self._same_file(fd):
                    continue
                previous = _read_fd(fd)
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    return Unlocked(False, None)
                except OSError as exc:
                    raise state_error(self.path, exc) from None
                return Unlocked(True, previous)
            finally:
                os.close(fd)
        return Unlocked(False, None)

    # ---- helpers ---------------------------------------------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started": datetime.now(UTC).isoformat(timespec="seconds")}

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise state_error(self.path, exc) from None

    def _flock(self, fd: int) -> bool:
        """True when taken, False when another open file holds it. The caller closes `fd` either way."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise state_error(self.path, what=f"the file system does not support file locks ({exc.strerror})") \
                from None
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)

    def _holder_text(self, holder: LockInfo | None) -> str:
        if holder is None:
            return f"{self.path} (its holder has not written its details yet, or they cannot be read)"
        text = f"{holder.describe()} ({self.path})"
        if holder.alive is False:  # the flock outlived that pid: a child process of it still has the file open
            text += f"; pid {holder.pid} has exited but a process it started still holds the file"
        return text

    def _running_message(self, holder: LockInfo | None) -> str:
        command = holder.command if holder is not None else "finetune command"
        return f"another {command} of this spec is running and holds the lock: {self._holder_text(holder)}"

    def _running_hint(self) -> str:
        return "wait for it to finish: two applies at once could start duplicate work"

    # ---- without flock (not POSIX): an exclusively created file, stale when its pid is gone ------------------------
    def _acquire_without_flock(self) -> None:  # pragma: no cover - not POSIX
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.read()
                if holder is None or holder.alive is False:
                    self.path.unlink(missing_ok=True)
                    self.taken_over = holder
                    continue
                if holder.alive is None:
                    raise FinetuneError(f"the lock {self.path} was written on another host: {holder.describe()}",
                                        hint="if nothing runs there, remove it with `finetune force-unlock SPEC`"
                                        ) from None
                raise FinetuneError(self._running_message(holder), hint=self._running_hint()) from None
            except OSError as exc:
                raise state_error(self.path, exc) from None
            with os.fdopen(fd, "w") as out:
                json.dump(self._info(), out)
            self._fd, self._owner = -1, os.getpid()
            return
        raise FinetuneError(f"the lock {self.path} keeps being replaced by another process")

    def _force_without_flock(self) -> Unlocked:  # pragma: no cover - not POSIX
        if not self.path.exists():
            return Unlocked(False, None)
        holder = self.read()
        if holder is not None and holder.alive:
            raise FinetuneError(f"a running process holds the lock: {self._holder_text(holder)}",
                                hint="wait for it to finish, or stop that process first")
        self.path.unlink(missing_ok=True)
        return Unlocked(True, holder)

    def __enter__(self) -> ApplyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_fd(fd: int) -> LockInfo | None:
    try:
        return LockInfo.parse(os.pread(fd, 4096, 0))
    except OSError:
        return None
