"""The human views of `finetune runs` (the list, and --compare), from the same dicts as `--json`."""

from __future__ import annotations

from typing import Any

Line = tuple[str, str | None]
# shown in the list (JSON has every metric); evaluation names as in finetune/backends/local/evaluate.py
KEY_METRICS = ("train_loss", "eval_loss", "perplexity", "rougeL", "exact_match")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cost(usd: float | None) -> str:
    return "-" if usd is None else f"${usd:,.2f}"


def _started(iso: str | None) -> str:
    return (iso or "-").replace("T", " ")[:16]


def render_runs(report: dict[str, Any]) -> list[Line]:
    runs = report["runs"]
    target = report["target"]
    lines: list[Line] = [(f"Training runs of {report['spec']} ({target.get('workspace') or target['kind']}), "
                          "newest first:", "bold")]
    for note in report.get("notes", []):
        lines.append((f"  note: {note}", "dim"))
    if not runs:
        lines.append(("  none yet: `finetune apply` trains the first", "dim"))
        return lines
    header = f"  {'#':>3}  {'job':<34} {'status':<10} {'started (UTC)':<16}  {'duration':>8}  {'cost':>8}  model"
    lines += [("", None), (header, "bold")]
    for run in runs:
        model = run.get("model") or "-"
        deployed = "  <- deployed" if run.get("deployed") else ""
        color = "green" if run.get("deployed") else ("red" if run["status"] in ("Failed", "Canceled") else None)
        lines.append((f"  {run['index']:>3}  {run['name']:<34} {run['status']:<10} {_started(run.get('started')):<16}"
                      f"  {_duration(run.get('duration_s')):>8}  {_cost(run.get('usd')):>8}  {model}{deployed}", color))
        shown = [f"{k} {_num(run['metrics'][k])}" for k in KEY_METRICS if k in run.get("metrics", {})]
        fingerprint = (run.get("fingerprint") or "-")[:12]
        lines.append((f"       fingerprint {fingerprint}" + (f"  {'  '.join(shown)}" if shown else ""), "dim"))
        if run["changed"] is None:
            lines.append(("       changed: (first run)", "dim"))
        else:
            lines.append((f"       changed: {'; '.join(run['changed']) or 'nothing (same inputs: a retry or rerun)'}",
                          None))
    if report.get("deployed"):
        lines.append(("", None))
        for address, model in sorted(report["deployed"].items()):
            lines.append((f"  deployed now: {address} serves {model}", None))
    return lines


def render_compare(result: dict[str, Any]) -> list[Line]:
    a, b = result["a"], result["b"]
    width = max(len(a["name"]), len(b["name"]), 12)
    lines: list[Line] = [(f"{result['spec']}: run {a['index']} vs run {b['index']}", "bold"), ("", None)]
    rows = [("job", a["name"], b["name"]), ("status", a["status"], b["status"]),
            ("fingerprint", (a.get("fingerprint") or "-")[:12], (b.get("fingerprint") or "-")[:12]),
            ("started", _started(a.get("started")), _started(b.get("started"))),
            ("duration", _duration(a.get("duration_s")), _duration(b.get("duration_s"))),
            ("cost", _cost(a.get("usd")), _cost(b.get("usd"))),
            ("model", a.get("model") or "-", b.get("model") or "-"),
            ("deployed", ", ".join(a.get("deployed") or []) or "-", ", ".join(b.get("deployed") or []) or "-")]
    for label, x, y in rows:
        lines.append((f"  {label:<14} {x:<{width}}  {y}", None))
    lines.append(("", None))
    lines.append(("  inputs changed (a -> b): " + ("; ".join(result["changed"]) or "none"), None))
    if result["metrics"]:
        lines += [("", None), (f"  {'metric':<22} {'a':>12} {'b':>12} {'b - a':>12}", "bold")]
        for m in result["metrics"]:
            delta = m["delta"]
            lines.append((f"  {m['name']:<22} {_num(m['a']):>12} {_num(m['b']):>12} "
                          f"{('+' if delta is not None and delta >= 0 else '') + _num(delta):>12}", None))
    return lines
