"""Apply's progress as text lines: the waves it runs in, one line per progress event, and the training line
(`step 189/216 (88%) loss 0.47 eta 0:42`) that every target's training progress is shown with."""

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


def duration(seconds: float) -> str:
    """`0:42`, `12:05`, `1:02:03`."""
    hours, rest = divmod(max(0, round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _count(value: float) -> str:
    return f"{round(value, 2):g}"


def training_line(step: int | None = None, total: int | None = None, *, epoch: float | None = None,
                  epochs: float | None = None, loss: float | None = None, eta_s: float | None = None) -> str:
    """`step 189/216 (88%) epoch 7/8 loss 0.47 eta 0:42`: each part only when known."""
    parts = []
    if step is not None:
        parts.append(f"step {step}/{total} ({min(100, round(100 * step / total))}%)" if total else f"step {step}")
    if epoch is not None:
        parts.append(f"epoch {_count(epoch)}" + (f"/{_count(epochs)}" if epochs else ""))
    if loss is not None:
        parts.append(f"loss {loss:.2f}" if abs(loss) >= 0.01 else f"loss {loss:.1e}")
    if eta_s is not None:
        parts.append(f"eta {duration(eta_s)}")
    return " ".join(parts)


class StepRate:
    """An ETA from the steps seen so far, for targets that report steps but no estimate."""

    def __init__(self) -> None:
        self._first: tuple[float, int] | None = None  # (seconds, step) of the first training step seen
        self._last_step = -1

    def eta(self, seconds: float, step: int | None, total: int | None) -> float | None:
        if step is None or not total:
            return None
        restarted = step < self._last_step  # a new attempt, resuming from an earlier checkpoint
        self._last_step = step
        if self._first is None or restarted:
            self._first = (seconds, step)
            return None
        since, first_step = self._first
        if step <= first_step or seconds <= since:
            return None
        return (total - step) * (seconds - since) / (step - first_step)


def training_message(progress: Any, eta_s: float | None = None) -> str:
    """One training progress report (backends.base.TrainingProgress) as text: `job NAME: ` when named, the state
    unless it is plain Running, then what loads (the phase) or the training line."""
    shown_state = progress.state != "Running" or not (progress.phase or progress.step is not None)
    body = progress.phase or training_line(progress.step, progress.total_steps, epoch=progress.epoch,
                                           epochs=progress.total_epochs, loss=progress.loss,
                                           eta_s=None if progress.state != "Running" else
                                           progress.eta_s if progress.eta_s is not None else eta_s)
    text = ", ".join(part for part in (progress.state if shown_state else "", body) if part)
    return f"job {progress.job}: {text}" if progress.job else text


def progress_printer(say: Say) -> Callable[[Any], None]:
    """A progress callback printing `[mm:ss] address verb message` for each event (apply.ProgressEvent)."""
    rates: dict[str, StepRate] = {}

    def show(event: Any) -> None:
        clock = f"[{int(event.elapsed) // 60:02d}:{int(event.elapsed) % 60:02d}]" if event.elapsed else "[--:--]"
        verb = VERBS[event.kind].format(action=event.action)
        message = event.message
        training = getattr(event, "training", None)
        if training is not None:
            rate = rates.setdefault(event.address, StepRate())
            eta = None if training.phase else rate.eta(event.elapsed, training.step, training.total_steps)
            message = training_message(training, eta)
        say(" ".join(p for p in (clock, event.address, verb, message) if p))

    return show
