"""Many specs at once: `finetune validate|plan|apply|status DIR` runs every spec in a folder.

Each spec runs as its own command (its own lock, its own backend) in a thread of this process, so the heavy SDK is
imported once; what a spec prints is captured and shown as one block per spec, then a combined summary. One failing
spec does not stop the others; the exit code is the worst one (internal error > interrupted > blocked > changes >
error > ok).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMANDS = ("validate", "plan", "apply", "status")
VALUE_OPTIONS = {"--var", "--var-file", "--out", "--format"}  # options followed by a value
SEVERITY = {0: 0, 2: 1, 1: 2, 3: 3, 130: 4, 70: 5}  # worst last
MAX_PARALLEL = 32


def folder_of(args: list[str]) -> Path | None:
    """The folder given where a spec is expected, for the commands that take many specs."""
    if not args or args[0] not in COMMANDS:
        return None
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            path = Path(arg)
            return path if path.is_dir() else None
    return None


def find_specs(folder: Path) -> list[Path]:
    """YAML files in the folder (not below it) that declare `apiVersion: finetune/v1`; lock files excluded."""
    found = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        if path.name.endswith((".lock.yaml", ".lock.yml")):
            continue
        try:
            head = path.read_text(errors="replace")[:4096]
        except OSError:
            continue
        if "apiVersion: finetune/v1" in head:
            found.append(path)
    return found


class _Router(io.TextIOBase):
    """sys.stdout/sys.stderr while specs run: each thread's writes go to its own buffer, others' to the real one."""

    def __init__(self, real: Any, local: threading.local, which: str) -> None:
        self._real, self._local, self._which = real, local, which

    def write(self, text: str) -> int:
        buffer = getattr(self._local, self._which, None)
        return (buffer or self._real).write(text)

    def flush(self) -> None:
        (getattr(self._local, self._which, None) or self._real).flush()

    def isatty(self) -> bool:
        return False


@dataclass
class Outcome:
    spec: Path
    code: int
    stdout: str
    stderr: str
    seconds: float


def run_folder(args: list[str], folder: Path, run: Callable[[list[str]], int], as_json: bool) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from finetune import console
    from finetune.backends.shared_reads import shared_reads

    command = args[0]
    if "--emulate" in args:
        return _refuse("--emulate rehearses one spec at a time; give a spec file, not a folder")
    if "--out" in args:
        return _refuse("--out saves one plan; give a spec file, not a folder")
    if command == "apply" and "--auto-approve" not in args:
        return _refuse("applying a folder needs --auto-approve (there is no prompt per spec); run `finetune plan "
                       f"{folder}` first to review")
    specs = find_specs(folder)
    if not specs:
        return _refuse(f"{folder} holds no spec (a YAML file with `apiVersion: finetune/v1`)")
    index = next(i for i, a in enumerate(args) if Path(a) == folder and not a.startswith("-"))
    local = threading.local()
    saved = sys.stdout, sys.stderr
    json_stack = console._json_stdout  # print_json writes to the top of this stack under --json
    router_out = _Router(json_stack[-1] if json_stack else sys.stdout, local, "out")
    sys.stdout, sys.stderr = router_out, _Router(sys.stderr, local, "err")
    json_stack.append(router_out)

    def one(spec: Path) -> Outcome:
        local.out, local.err = io.StringIO(), io.StringIO()
        begun = time.monotonic()
        code = run([*args[:index], str(spec), *args[index + 1:]])
        return Outcome(spec, code, local.out.getvalue(), local.err.getvalue(), time.monotonic() - begun)

    try:
        # specs naming the same registry model, component or workspace read each of those once between them
        with shared_reads(live=command != "apply"), ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(specs)),
                                                thread_name_prefix="spec") as pool:
            outcomes = list(pool.map(one, specs))
    finally:
        sys.stdout, sys.stderr = saved
        json_stack.remove(router_out)
    worst = max((o.code for o in outcomes), key=lambda c: SEVERITY.get(c, 5))
    if as_json:
        console.print_json({"ok": all(o.code in (0, 2) for o in outcomes), "exit_code": worst,
                            "specs": [_json_of(o) for o in outcomes]})
    else:
        _print_blocks(command, outcomes)
    return worst


def _json_of(outcome: Outcome) -> dict[str, Any]:
    try:
        result = json.loads(outcome.stdout) if outcome.stdout.strip() else None
    except ValueError:
        result = None
    return {"spec": str(outcome.spec), "exit_code": outcome.code, "seconds": round(outcome.seconds, 3),
            "result": result, "errors": [line for line in outcome.stderr.splitlines() if "error" in line]}


STATUS = {0: "ok", 1: "error", 2: "changes", 3: "blocked", 70: "internal error", 130: "interrupted"}


def _print_blocks(command: str, outcomes: list[Outcome]) -> None:
    from finetune.console import say

    for outcome in outcomes:
        say(f"=== {outcome.spec} ===", "bold")
        if outcome.stderr.strip():
            sys.stderr.write(outcome.stderr if outcome.stderr.endswith("\n") else outcome.stderr + "\n")
        if outcome.stdout.strip():
            sys.stdout.write(outcome.stdout if outcome.stdout.endswith("\n") else outcome.stdout + "\n")
    say(f"{command} of {len(outcomes)} spec(s):", "bold")
    for outcome in outcomes:
        say(f"  {STATUS.get(outcome.code, outcome.code):<14} {outcome.spec}  ({outcome.seconds:.1f} s)")


def _refuse(message: str) -> int:
    from finetune.console import say

    say(f"error: {message}", "red", stderr=True)
    return 1
