"""Loss curves for `finetune status` (both targets): a PNG file (matplotlib, which ships with mlflow) and text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

Series = Sequence[tuple[int, float]]  # (step, value): a metric history

SPARK_CHARS = "▁▂▃▄▅▆▇█"


def _finite(series: Series) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in series if math.isfinite(float(v))]


def _resample(values: list[float], width: int) -> list[float]:
    """Mean of each of `width` equal buckets (or the values themselves when there are fewer)."""
    if len(values) <= width:
        return values
    out = []
    for i in range(width):
        bucket = values[i * len(values) // width: (i + 1) * len(values) // width]
        out.append(sum(bucket) / len(bucket))
    return out


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """One line of block characters, e.g. '█▇▆▅▄▃▂▁' for a falling loss."""
    vals = _resample([float(v) for v in values if math.isfinite(float(v))], width)
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(SPARK_CHARS[min(len(SPARK_CHARS) - 1, int((v - lo) / span * len(SPARK_CHARS)))] for v in vals)


def ascii_plot(series: dict[str, Series], width: int = 60, height: int = 12, ascii_only: bool = False) -> str:
    """A small multi-series chart in plain text: y labels on the left, steps underneath, one mark per series.

    The first series (usually "loss") is drawn first; later ones (e.g. "eval_loss") overwrite where they meet.
    """
    marks = "*o+x#" if ascii_only else "•o+x#"
    data = {name: _finite(s) for name, s in series.items()}
    data = {name: s for name, s in data.items() if s}
    if not data:
        return "(no metrics yet)"
    steps = [s for pts in data.values() for s, _ in pts]
    values = [v for pts in data.values() for _, v in pts]
    s_lo, s_hi = min(steps), max(steps)
    v_lo, v_hi = min(values), max(values)
    if v_hi == v_lo:
        v_lo, v_hi = v_lo - 0.5, v_hi + 0.5
    grid = [[" "] * width for _ in range(height)]
    for pts, mark in zip(data.values(), marks, strict=False):
        for step, value in pts:
            x = 0 if s_hi == s_lo else round((step - s_lo) / (s_hi - s_lo) * (width - 1))
            y = round((v_hi - value) / (v_hi - v_lo) * (height - 1))
            grid[y][x] = mark
    label_w = max(len(f"{v_hi:.3g}"), len(f"{v_lo:.3g}"))
    lines = []
    for i, row in enumerate(grid):
        label = f"{v_hi:.3g}" if i == 0 else f"{v_lo:.3g}" if i == height - 1 else ""
        lines.append(f"{label:>{label_w}} |{''.join(row)}")
    lines.append(" " * label_w + " +" + "-" * width)
    left, right = f"step {s_lo}", f"{s_hi}"
    lines.append(" " * (label_w + 2) + left + right.rjust(width - len(left)))
    legend = "  ".join(f"{mark} {name}" for name, mark in zip(data, marks, strict=False))
    lines.append(" " * (label_w + 2) + legend)
    return "\n".join(lines)


def write_png(series: dict[str, Series], path: str | Path, title: str = "loss") -> Path:
    """Line chart of each series against step, written as a PNG (headless backend)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        for name, pts in series.items():
            pts = _finite(pts)
            if pts:
                steps, values = zip(*pts, strict=True)
                ax.plot(steps, values, marker="o" if len(pts) < 20 else None, markersize=3, label=name)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def loss_series(metrics: dict[str, Series]) -> dict[str, Series]:
    """The loss-like histories worth plotting, training loss first."""
    keys = [k for k in ("loss", "eval_loss") if k in metrics]
    return {k: metrics[k] for k in keys}
