"""Chat-format checks, one row at a time, as the chat-completion fine-tuning component expects them."""

from __future__ import annotations

from typing import Any

ROLES_ALLOWED = ("system", "user", "assistant")


def row_problems(row: Any) -> list[str]:
    """Why `row` is not a valid chat row (empty when it is). Extra columns are allowed and kept."""
    if not isinstance(row, dict):
        return [f"row is a {type(row).__name__}, not an object"]
    if "messages" not in row:
        return ["no 'messages' field"]
    messages = row["messages"]
    if not isinstance(messages, list):
        return [f"'messages' is a {type(messages).__name__}, not a list"]
    if not messages:
        return ["'messages' is empty"]
    problems: list[str] = []
    has_user = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"messages[{i}] is not an object")
            continue
        role, content = message.get("role"), message.get("content")
        if role not in ROLES_ALLOWED:
            problems.append(f"messages[{i}].role is {role!r}, not one of system/user/assistant")
        has_user = has_user or role == "user"
        if not isinstance(content, str):
            problems.append(f"messages[{i}].content is {'missing' if content is None else type(content).__name__}")
        elif not content.strip():
            problems.append(f"messages[{i}].content is empty")
    if not has_user:
        problems.append("no user turn")
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") != "assistant":
        problems.append(f"last turn is {last.get('role')!r}, not 'assistant'")
    return problems


def valid_turns(row: Any) -> tuple[list[tuple[str, str]], int] | None:
    """((role, content) of each message, total content chars) of a row without problems, else None.

    The fast path for the common, valid row: one pass that also yields what stats and overlap keys need.
    It accepts exactly the rows row_problems() finds nothing wrong with (tests hold the two to agreeing).
    """
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    turns: list[tuple[str, str]] = []
    chars, has_user, role = 0, False, None
    for message in messages:
        if not isinstance(message, dict):
            return None
        role, content = message.get("role"), message.get("content")
        if role not in ROLES_ALLOWED or not isinstance(content, str) or not content.strip():
            return None
        has_user = has_user or role == "user"
        chars += len(content)
        turns.append((role, content))
    return (turns, chars) if has_user and role == "assistant" else None
