"""Loss-curve renderings: terminal text and PNG."""

import pytest

from finetune.backends.lossplot import ascii_plot, loss_series, sparkline, write_png

LOSS = [(step, 6.0 - step * 0.1) for step in range(1, 41)]


def test_sparkline_falls_for_a_falling_loss():
    line = sparkline([v for _, v in LOSS], width=8)
    assert len(line) == 8 and line[0] == "█" and line[-1] == "▁"
    assert sparkline([]) == "" and len(sparkline([1.0, 1.0])) == 2


def test_ascii_plot_has_axes_labels_and_legend():
    text = ascii_plot({"loss": LOSS, "eval_loss": [(20, 4.5), (40, 2.5)]}, width=30, height=6, ascii_only=True)
    lines = text.splitlines()
    assert lines[0].startswith("5.9") and "*" in lines[0]
    assert "step 1" in lines[-2] and lines[-2].rstrip().endswith("40")
    assert "* loss" in lines[-1] and "o eval_loss" in lines[-1]
    assert ascii_plot({}) == "(no metrics yet)"
    assert ascii_plot({"loss": [(1, float("nan"))]}) == "(no metrics yet)"


def test_loss_series_picks_losses():
    assert list(loss_series({"grad_norm": [], "eval_loss": [(1, 1.0)], "loss": LOSS})) == ["loss", "eval_loss"]


def test_png_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    path = write_png({"loss": LOSS, "eval_loss": [(40, 2.0)]}, tmp_path / "plots" / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
