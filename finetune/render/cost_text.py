"""The plan's cost block in words: training time and cost ranges, the endpoint per hour/day/month, the budget,
and the assumptions behind the figures. Shared by the text and markdown views, so they say the same."""

from __future__ import annotations

from typing import Any

Line = tuple[str, str | None]


def money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def _unit(hours: float) -> tuple[float, str]:
    seconds = hours * 3600
    if seconds < 90:
        return seconds, "s"
    if seconds < 5400:
        return seconds / 60, "min"
    return hours, "h"


def duration(hours: float) -> str:
    value, unit = _unit(hours)
    return f"{value:.1f} {unit}" if unit == "h" else f"{value:.0f} {unit}"


def durations(low: float, high: float) -> str:
    """`1.6-4.2 h`, `40 s-2 min`: one unit when both ends share it."""
    first, second = duration(low), duration(high)
    if first == second:
        return first
    if _unit(low)[1] == _unit(high)[1]:
        return f"{first.rsplit(' ', 1)[0]}-{second}"
    return f"{first}-{second}"


def span(low: str, high: str) -> str:
    return low if low == high else f"{low}-{high}"


def _estimate(cost: dict[str, Any]) -> str:
    """`time 1.2-3.4 h, cost $4.40-$12.48`, or what is not known yet."""
    hours = cost.get("training_hours")
    if not hours:
        return "time unknown (see the notes)"
    text = f"time {durations(hours['low'], hours['high'])}"
    usd = cost.get("training_usd")
    if usd and usd["high"]:
        text += f", cost {span(money(usd['low']), money(usd['high']))}"
    return text


NOT_STARTED = "none started by this apply (the job with these inputs already ran or is running)"


def training_summary(cost: dict[str, Any]) -> dict[str, Any] | None:
    """Where training runs and its estimate, in words: {where, estimate, workload, runs}; None without training."""
    training = cost.get("training") or {}
    if "sku" in training:
        gpus = f" ({training['gpus']})" if training.get("gpus") else ""
        nodes = training["nodes"]
        where = f"{training['sku']} x {nodes} node{'s' if nodes != 1 else ''}{gpus} at " \
                f"{money(training['usd_per_hour'])}/hour"
    elif "device" in training:
        where = f"this machine ({training['device']})"
    else:
        return None
    return {"where": where, "estimate": _estimate(cost), "workload": training.get("workload", ""),
            "runs": cost.get("training_runs", True)}


def _training_lines(cost: dict[str, Any]) -> list[str]:
    summary = training_summary(cost)
    if summary is None:
        return []
    if not summary["runs"]:
        return [f"training: {NOT_STARTED}; a new run on {summary['where']}: {summary['estimate']}"]
    workload = f" ({summary['workload']})" if summary["workload"] else ""
    return [f"training: {summary['where']}", f"  {summary['estimate']}{workload}"]


def endpoint_lines(cost: dict[str, Any]) -> list[str]:
    """Each deployment's share, then the endpoint's total per hour, day and month (one line for one deployment)."""
    deployments = [d for d in cost.get("deployments") or [] if d.get("sku")]
    if not deployments:
        return []
    shares = [f"{d['name']}: {d['sku']} x {d['instances']} instance{'s' if d['instances'] != 1 else ''}"
              for d in deployments]
    total = (f"{money(cost['endpoint_per_hour'])}/hour = {money(cost['endpoint_per_day'])}/day = "
             f"{money(cost['endpoint_per_month'])}/month (730 h) until `finetune destroy`")
    if len(deployments) == 1:
        return [f"endpoint: {shares[0]}, {total}"]
    return [f"deployment {share} at {money(d['usd_per_hour'])}/hour" for share, d in zip(shares, deployments,
                                                                                       strict=True)] + \
        [f"endpoint: {total}"]


def budget_line(budget: dict[str, Any]) -> str:
    limits = [f"{name} {money(budget[key])}" for key, name in (("max_training_usd", "training"),
                                                               ("max_endpoint_usd_per_day", "endpoint per day"))
              if budget.get(key) is not None]
    verdict = "OVER" if budget["over"] else ("not fully checked" if budget["unchecked"] else "within")
    return f"budget ({', '.join(limits)}): {verdict}"


def cost_lines(cost: dict[str, Any]) -> list[Line]:
    """The cost block as (text, style) lines, indented under a "Cost estimate:" heading."""
    if not cost:
        return []
    lines: list[Line] = [("Cost estimate:", "bold")]
    lines += [(f"  {text}", None) for text in _training_lines(cost)]
    idle = cost.get("idle_nodes")
    if idle:
        lines.append((f"  idle cluster nodes: {idle['sku']} x {idle['count']} at {money(idle['usd_per_hour'])}/hour "
                      f"= {money(idle['usd_per_day'])}/day, always (min_instances > 0)", None))
    lines += [(f"  {text}", None) for text in endpoint_lines(cost)]
    budget = cost.get("budget")
    if budget:
        lines.append((f"  {budget_line(budget)}", "bold red" if budget["over"] else None))
        lines += [(f"    ! {text}", "red") for text in budget["over"]]
        lines += [(f"    {text}", "yellow") for text in budget["unchecked"]]
    if cost.get("assumptions"):
        lines.append(("  assumptions:", "dim"))
        lines += [(f"    - {text}", "dim") for text in cost["assumptions"]]
    lines += [(f"  note: {note}", "dim") for note in cost.get("notes", [])]
    lines.append(("", None))
    return lines


def estimate_vs_actual(cost: dict[str, Any], job: dict[str, Any] | None) -> list[str]:
    """After a training run: how long it took and how fast, next to what the plan estimated (so the estimate can be
    checked). Nothing when the apply trained nothing (the job was adopted) or the run measured nothing."""
    if not job or job.get("train_seconds") is None:
        return []
    took = (job.get("job_seconds") or job["train_seconds"]) / 3600
    hours = cost.get("training_hours")
    verdict = ""
    if hours:
        where = "within" if hours["low"] <= took <= hours["high"] else ("under" if took < hours["low"] else "over")
        verdict = f"; estimated {durations(hours['low'], hours['high'])}: {where} the estimate"
    lines = [f"Training took {duration(took)}{verdict}"]
    estimated = cost.get("training") or {}
    if job.get("train_tokens") is not None and job.get("tokens_per_second"):
        text = f"  {job['train_tokens']:,} tokens at {job['tokens_per_second']:,.0f} tokens/s"
        rate = estimated.get("tokens_per_second")
        if rate:
            text += f" (estimated {rate['low']:,.0f}-{rate['high']:,.0f} tokens/s"
            text += f", {estimated['tokens']:,} tokens)" if estimated.get("tokens") else ")"
        lines.append(text)
    return lines
