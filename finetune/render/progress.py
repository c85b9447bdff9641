"""Apply's progress as text lines: the waves it runs in, and one line per progress event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Say = Callable[[str], None]


def order_summary(plan: Any) -> str:
    """`1) a, b  2) c  3) d`: the waves apply runs in, each after the one before (within a wave, concurrently)."""
    level: dict[str, int] = {}
    for change in plan.changes:
        level[change.address] = 1 + max((level.get(d, 0) for d in change.depends_on), default=0)
    active = [c for c in plan.changes if c.action.is_change or c.action.value == "read"]
    waves: dict[int, list[str]] = {}
    for change in active:
        waves.setdefault(level[change.address], []).append(change.address)
    return "  ".join(f"{i}) {', '.join(waves[k])}" for i, k in enumerate(sorted(waves), 1))


VERBS = {"start": "{action}:", "status": "", "done": "done", "failed": "FAILED:", "skipped": "",
         "interrupted": "interrupted:"}


def progress_printer(say: Say) -> Callable[[Any], None]:
    """A progress callback printing `[mm:ss] address verb message` for each event (apply.ProgressEvent)."""

    def show(event: Any) -> None:
        clock = f"[{int(event.elapsed) // 60:02d}:{int(event.elapsed) % 60:02d}]" if event.elapsed else "[--:--]"
        verb = VERBS[event.kind].format(action=event.action)
        say(" ".join(p for p in (clock, event.address, verb, event.message) if p))

    return show
