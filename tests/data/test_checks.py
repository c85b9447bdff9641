from __future__ import annotations

import pytest

from finetune.data.checks import row_problems


def _m(*pairs: tuple[str, object]) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in pairs]}


def test_valid_rows_pass_and_extra_columns_are_fine() -> None:
    assert row_problems({**_m(("system", "be brief"), ("user", "hi"), ("assistant", "hello")), "prompt_id": "x"}) == []
    assert row_problems(_m(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"))) == []


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ([1, 2], "not an object"),
        ({"prompt": "x"}, "no 'messages' field"),
        ({"messages": "hi"}, "not a list"),
        ({"messages": []}, "'messages' is empty"),
        ({"messages": ["hi", {"role": "assistant", "content": "x"}]}, "messages[0] is not an object"),
        (_m(("user", "a"), ("bot", "b")), "messages[1].role is 'bot'"),
        (_m(("assistant", "b")), "no user turn"),
        (_m(("user", "a"), ("assistant", "b"), ("user", "c")), "last turn is 'user'"),
        (_m(("user", "  "), ("assistant", "b")), "messages[0].content is empty"),
        (_m(("user", 3), ("assistant", "b")), "messages[0].content is int"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]}, "messages[0].content is missing"),
    ],
)
def test_each_problem_is_named(row: object, problem: str) -> None:
    assert any(problem in p for p in row_problems(row)), row_problems(row)
