"""The human view of `finetune status`, from the same dict as `--json`."""

from __future__ import annotations

from typing import Any

from finetune.render.exchange import smoke_test_lines

Line = tuple[str, str | None]


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())


def metrics_lines(metrics: dict[str, Any] | None) -> list[Line]:
    """The training job's metrics as read from the target's tracking (latest, final values, evaluation scores)."""
    if not metrics:
        return []
    lines: list[Line] = [(f"  metrics of job {metrics.get('job')} ({metrics.get('source', 'tracking')}):", "bold")]
    latest = metrics.get("latest") or {}
    if latest:
        lines.append((f"      latest: {_values(latest)}", None))
    else:
        lines.append(("      nothing logged yet", "dim"))
    scored = {k for scores in (metrics.get("evaluation") or {}).values() for k in scores}
    final = {k: v for k, v in (metrics.get("final") or {}).items() if k not in latest and k not in scored}
    if final:
        lines.append((f"      logged: {_values(final)}", None))
    for run, scores in (metrics.get("evaluation") or {}).items():
        lines.append((f"      evaluation ({run}): {_values(scores)}", None))
    return lines


def render_status(report: dict[str, Any]) -> list[Line]:
    target = report["target"]
    lines: list[Line] = [(f"finetune status: {report['spec']} -> {target.get('workspace') or target['kind']}",
                          "bold"), ("", None)]
    for entry in report["resources"]:
        if not entry["exists"]:
            latest = f" (latest run: {entry['latest_run']})" if entry.get("latest_run") else ""
            lines.append((f"  - {entry['address']}: absent{latest}", "dim"))
            continue
        state = f" [{entry['status']}]" if entry.get("status") else ""
        differs = entry.get("in_sync") is False
        sync = "  (differs from the spec: run plan)" if differs else ""
        lines.append((f"  * {entry['address']}{state}{sync}", "yellow" if differs else "green"))
        details = entry.get("details") or {}
        if (entry.get("properties") or {}).get("version") and entry["address"].startswith("model."):
            lines.append((f"      version: {entry['properties']['version']}", None))
        for key in ("name", "url", "scoring_uri", "pid", "health"):
            if details.get(key):
                lines.append((f"      {key}: {details[key]}", None))
        for name, value in (details.get("metrics") or {}).items():
            lines.append((f"      {name}: {value:.4g}" if isinstance(value, float) else f"      {name}: {value}", None))
        if entry.get("usd_per_hour"):
            lines.append((f"      cost: ${entry['usd_per_hour']:,.2f}/hour", None))
    for note in report.get("notes", []):
        lines.append((f"  note: {note}", "dim"))
    for warning in report.get("warnings", []):
        lines.append((f"  ! {warning}", "yellow"))
    if report.get("smoke_test"):
        lines.append(("", None))
        lines.extend(smoke_test_lines(report["smoke_test"]))
        lines.append(("", None))
    if report.get("evaluation"):
        from finetune.render.evaluation import evaluation_lines

        lines += [(line, None) for line in evaluation_lines(report["evaluation"], indent="  ")]
    lines += metrics_lines(report.get("metrics"))  # right above the loss curve it belongs with
    for line in report.get("loss_plot", []) or []:
        lines.append((line, None))
    if report.get("loss_png"):
        lines.append((f"  loss curve: {report['loss_png']}", None))
    burn = report.get("burn", {})
    if burn.get("usd_per_hour"):
        lines.append(("", None))
        lines.append((f"Running cost: ${burn['usd_per_hour']:,.2f}/hour = ${burn['usd_per_day']:,.2f}/day until "
                      "`finetune destroy`", "bold"))
    return lines
