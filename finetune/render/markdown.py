"""The markdown view of a plan (pull-request comments), built from `Plan.to_dict()` (the same data as `--json`).

`plan_view` groups the plan dict for `templates/plan.md.j2`; the filters here escape what goes into it. Rendering
only: nothing is decided here that the plan did not say.
"""

from __future__ import annotations

import re
from typing import Any

from finetune.render.cost_text import NOT_STARTED, budget_line, money, training_summary

# Backslash-escaped in running text and table cells: CommonMark allows escaping any ASCII punctuation, and these are
# the ones that start emphasis, code, links, strikethrough, inline HTML or (`|`) end a table cell.
_SIGNIFICANT = re.compile(r"([\\`*_\[\]<>|~])")
_NEWLINES = re.compile(r"\r\n|\r|\n")

# How each action reads in the summary and the change table.
ACTION_LABELS = {"create": "create", "update": "update", "replace": "replace", "delete": "destroy", "read": "wait",
                 "noop": "unchanged"}
SUMMARY_ORDER = (("create", "to create"), ("update", "to update"), ("replace", "to replace"),
                 ("delete", "to destroy"), ("read", "to wait for"), ("noop", "unchanged"))


def md_text(value: Any) -> str:
    """Plain text safe in a paragraph, a list item or a table cell: markdown punctuation escaped, newlines `<br>`."""
    text = _SIGNIFICANT.sub(r"\\\1", _plain(value))
    return _NEWLINES.sub("<br>", text)


def md_code(value: Any) -> str:
    """A code span safe in a table cell: a fence longer than any backtick run inside, `|` escaped, one line."""
    text = _NEWLINES.sub(" ", _plain(value))
    if not text:
        return '`""`'
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")) else ""
    # GitHub splits table cells on `|` before it parses code spans; `\|` stays a literal `|` inside the span.
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return "" if value is None else str(value)


def _placeholder(value: str) -> bool:
    """`(workspace not set)`, `(known after apply)`: a stand-in for a value, not the value."""
    return value.startswith("(") and value.endswith(")")


def describe_target(target: dict[str, Any]) -> str:
    """The header's target, as markdown: kind, workspace (or that none is set), and whether it was read."""
    kind = target.get("kind") or "unknown target"
    workspace = target.get("workspace")
    parts = [md_text(kind)]
    if workspace and not _placeholder(str(workspace)):
        name, _sep, rest = str(workspace).partition(" (")
        parts.append(f"workspace {md_code(name)}" + (f" ({md_text(rest)}" if rest else ""))
    elif workspace or kind == "azureml":
        parts.append("workspace not set")
    return ", ".join(parts)


def plan_view(plan: dict[str, Any]) -> dict[str, Any]:
    """What the template shows, grouped; every value still raw (the template escapes it)."""
    changes = plan["changes"]
    blocked_addresses = [c["address"] for c in changes if c["blocked_by"]]
    blocking = [d for d in plan["diagnostics"] if d["severity"] == "error" and d.get("address") in blocked_addresses]
    explained = {d["address"] for d in blocking}
    # A change blocked by something the diagnostics do not explain still shows why, as the planner put it.
    unexplained = [{"address": c["address"], "reason": reason} for c in changes if c["address"] not in explained
                   for reason in c["blocked_by"]]
    listed = [c for c in changes if c["action"] != "noop" or c["blocked_by"]]
    summary = plan["summary"]
    cost = plan.get("cost") or {}
    return {
        "spec_name": plan["spec_name"],
        "spec_path": plan["spec_path"],
        "target": describe_target(plan["target"]),
        "offline": plan["target"].get("mode") == "offline",
        "blocked": plan["blocked"],
        "has_changes": plan["has_changes"],
        "waits": summary.get("read", 0),
        "counts": [(label, summary.get(action, 0)) for action, label in SUMMARY_ORDER],
        "blocking": blocking,
        "unexplained": unexplained,
        "changes": [{"symbol": c["symbol"], "action": ACTION_LABELS.get(c["action"], c["action"]),
                     "address": c["address"], "reasons": list(c["reasons"]), "blocked": bool(c["blocked_by"])}
                    for c in listed],
        "legend": sorted({(c["symbol"], ACTION_LABELS.get(c["action"], c["action"])) for c in listed},
                         key=lambda entry: list(ACTION_LABELS.values()).index(entry[1])),
        "unchanged": sum(1 for c in changes if c["action"] == "noop" and not c["blocked_by"]),
        "pins": [{**p, "pending": _placeholder(str(p["resolved"]))} for p in plan["pins"]],
        "any_locked": any(p.get("locked") for p in plan["pins"]),
        "training": training_summary(cost),
        "not_started": NOT_STARTED,
        "deployments": [d for d in cost.get("deployments") or [] if d.get("sku")],
        "endpoint_per_hour": cost.get("endpoint_per_hour"),
        "endpoint_per_day": cost.get("endpoint_per_day"),
        "endpoint_per_month": cost.get("endpoint_per_month"),
        "budget": {"line": budget_line(cost["budget"]), **cost["budget"]} if cost.get("budget") else None,
        "cost_assumptions": list(cost.get("assumptions") or []),
        "cost_notes": list(cost.get("notes") or []),
        "parameters": list(plan["parameters"]),
        "dropped": sorted(plan["dropped_parameters"].items()),
        "diagnostics": [d for d in plan["diagnostics"] if d not in blocking],
    }


def location(diagnostic: dict[str, Any]) -> str:
    loc = diagnostic.get("location")
    if loc and loc.get("line"):
        return f"{loc['file']}:{loc['line']}:{loc['column']}"
    return ""


FILTERS = {"md": md_text, "code": md_code, "money": money, "plan_view": plan_view, "location": location}
