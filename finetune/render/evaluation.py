"""The human view of a training run's test-split evaluation (apply's summary and `status`), from its JSON block."""

from __future__ import annotations

from typing import Any

# Azure ML's metric names (see finetune/backends/local/evaluate.py), in the order shown.
SHOWN = ("perplexity", "test_loss", "rougeL", "exact_match")


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def evaluation_lines(evaluation: dict[str, Any], indent: str = "") -> list[str]:
    """`test split (N rows): metric value (base B, +gain)` lines; an error or a skip is one line."""
    if evaluation.get("error"):
        return [f"{indent}evaluation failed: {evaluation['error']}"]
    if evaluation.get("skipped"):
        return [f"{indent}evaluation skipped: {evaluation['skipped']}"]
    model, base = evaluation.get("model") or {}, evaluation.get("base") or {}
    cached = " (base scores cached)" if evaluation.get("base_cached") else ""
    lines = [f"{indent}test split, {evaluation.get('rows')} rows{cached}:"]
    for name in SHOWN:
        if name not in model:
            continue
        line = f"{indent}  {name:<12} {_number(model[name])}"
        if name in base:
            gain = model[name] - base[name]
            line += f"  (base {_number(base[name])}, {'+' if gain >= 0 else ''}{_number(gain)})"
        lines.append(line)
    return lines
