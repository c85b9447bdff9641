"""The human view of a plan, built from `Plan.to_dict()` (the same data as `--json`).

Returns (text, style) lines; the CLI decides whether styles become colours (TTY, NO_COLOR).
"""

from __future__ import annotations

from typing import Any

from finetune.render.cost_text import cost_lines

Line = tuple[str, str | None]

STYLES = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "noop": "dim",
          "read": "cyan"}
HIDDEN_KEYS = {"parameters"}  # shown in their own table, with provenance


def render_plan(plan: dict[str, Any], *, verbose: bool = False) -> list[Line]:
    lines: list[Line] = []
    target = plan["target"]
    where = target.get("workspace") or target["kind"]
    lines.append((f"finetune plan: {plan['spec_name']} -> {target['kind']}: {where}", "bold"))
    if target.get("mode") == "offline":
        lines.append(("offline: the target was not read, so everything is shown as to-create", "dim"))
    lines.append(("", None))

    if plan["pins"]:
        lines.append(("Pins:", "bold"))
        for pin in plan["pins"]:
            source = " (lock file)" if pin.get("locked") else ""
            lines.append((f"  {pin['what']} {pin['name']}: {pin['requested']} -> {pin['resolved']}{source}", None))
        lines.append(("", None))

    for change in plan["changes"]:
        if change["action"] == "noop" and not verbose:
            continue
        lines.extend(_change_lines(change))
    unchanged = [c["address"] for c in plan["changes"] if c["action"] == "noop"]
    if unchanged and not verbose:
        lines.append((f"  = {len(unchanged)} unchanged: {', '.join(unchanged)}", "dim"))
        lines.append(("", None))

    lines.extend(_parameter_lines(plan))
    lines.extend(cost_lines(plan["cost"]))
    lines.extend(_diagnostic_lines(plan["diagnostics"]))
    lines.append((summary_line(plan), "bold"))
    if plan["blocked"]:
        lines.append(("Plan is BLOCKED: fix the problems above before apply.", "bold red"))
    return lines


def summary_line(plan: dict[str, Any]) -> str:
    s = plan["summary"]
    return (f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
            f"{s['delete']} to destroy, {s['noop']} unchanged.")


def _change_lines(change: dict[str, Any]) -> list[Line]:
    style = STYLES[change["action"]]
    lines: list[Line] = [(f"  {change['symbol']} {change['address']}", f"bold {style}")]
    for reason in change["reasons"]:
        lines.append((f"      # {reason}", "dim"))
    after = change.get("after") or {}
    before = change.get("before") or {}
    for key, value in after.items():
        if key in HIDDEN_KEYS or value is None:
            continue
        old = before.get(key)
        if change["action"] in ("update", "replace") and key in before and _same(old) != _same(value):
            lines.append((f"      ~ {key}: {_text(old)} -> {_text(value)}", style))
        else:
            lines.append((f"        {key}: {_text(value)}", None))
    for block in change.get("blocked_by", []):
        lines.append((f"      ! blocked: {block}", "red"))
    lines.append(("", None))
    return lines


def _same(value: Any) -> Any:
    """A value as compared (mapping order and unset entries do not make a difference)."""
    if isinstance(value, dict):
        return {k: _same(v) for k, v in sorted(value.items()) if v is not None}
    return value


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _parameter_lines(plan: dict[str, Any]) -> list[Line]:
    if not plan["parameters"]:
        return []
    lines: list[Line] = [("Fine-tuning parameters (effective):", "bold")]
    width = max(len(p["name"]) for p in plan["parameters"])
    value_width = max(len(str(p["value"])) for p in plan["parameters"])
    for p in plan["parameters"]:
        note = f"  ({p['note']})" if p.get("note") else ""
        style = None if p["source"] != "component default" else "dim"
        lines.append((f"  {p['name']:<{width}}  {str(p['value']):<{value_width}}  {p['source']}{note}", style))
    for name, why in plan["dropped_parameters"].items():
        lines.append((f"  dropped {name}: {why}", "yellow"))
    lines.append(("", None))
    return lines


def _diagnostic_lines(diagnostics: list[dict[str, Any]]) -> list[Line]:
    lines: list[Line] = []
    for d in diagnostics:
        loc = d.get("location")
        where = f"{loc['file']}:{loc['line']}:{loc['column']}: " if loc and loc.get("line") else ""
        what = f"{d['path']}: " if d.get("path") else (f"{d['address']}: " if d.get("address") else "")
        hint = f" ({d['hint']})" if d.get("hint") else ""
        style = "red" if d["severity"] == "error" else "yellow"
        lines.append((f"{where}{d['severity']}: {what}{d['message']}{hint}", style))
    if lines:
        lines.append(("", None))
    return lines
