"""A chat exchange as text: the question (last user turn), the expected answer when the sample row has one, and the
answer. Shown by apply's smoke test, `invoke` and `status`, from the same dict as their JSON."""

from __future__ import annotations

from typing import Any

Line = tuple[str, str | None]
LABELS = (("question", "question", None), ("expected", "expected", "dim"), ("answer", "answer", "bold"))


def exchange_lines(exchange: dict[str, Any], indent: str = "  ") -> list[Line]:
    """`question: ...`, `expected: ...`, `answer:   ...`, continuation lines aligned under the first."""
    lines: list[Line] = []
    for label, key, style in LABELS:
        value = exchange.get(key)
        if value is None:
            continue  # no expected answer for a typed message
        first, *rest = str(value).splitlines() or [""]
        lines.append((f"{indent}{label + ':':<10}{first or '(empty)'}", style))
        lines.extend((f"{indent}{'':<10}{line}", style) for line in rest)
    return lines


def smoke_test_lines(record: dict[str, Any]) -> list[Line]:
    """The last smoke test as `status` keeps it: when, on which deployment, and its exchange or its error."""
    on = f" on deployment {record['deployment']}" if record.get("deployment") else ""
    when = f" ({record['time']})" if record.get("time") else ""
    if not record.get("ok"):
        return [(f"Last smoke test{on} FAILED{when}: {record.get('error') or 'no answer'}", "bold red")]
    return [(f"Last smoke test{on}{when}:", "bold"), *exchange_lines(record)]
