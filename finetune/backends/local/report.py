"""A training run's metrics for `finetune status`: last values, a sparkline, a terminal chart and a PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from finetune.backends.local.lossplot import ascii_plot, loss_series, sparkline, write_png
from finetune.backends.local.registry import get_run_metrics


@dataclass
class TrainingReport:
    last: dict[str, float] = field(default_factory=dict)  # final value of every metric
    histories: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    sparkline: str = ""  # of the training loss
    chart: str = ""  # multi-line terminal chart of loss and eval_loss
    png_path: Path | None = None


def training_report(tracking_uri: str, run_id: str, png_path: str | Path | None = None, width: int = 60,
                    height: int = 10, ascii_only: bool = False) -> TrainingReport:
    histories = get_run_metrics(tracking_uri, run_id)
    losses = loss_series(histories)
    report = TrainingReport(
        last={k: h[-1][1] for k, h in histories.items() if h},
        histories=histories,
        sparkline=sparkline([v for _, v in histories.get("loss", [])], width=min(width, 40)),
        chart=ascii_plot(losses, width=width, height=height, ascii_only=ascii_only),
    )
    if png_path is not None and losses:
        report.png_path = write_png(losses, png_path, title=f"run {run_id[:8]}")
    return report
