from __future__ import annotations

import pytest

from finetune.data.checks import row_problems, valid_turns


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


_TRICKY = [
    [1, 2],
    "text",
    None,
    {"prompt": "x"},
    {"messages": None},
    {"messages": "hi"},
    {"messages": []},
    {"messages": ["hi", {"role": "assistant", "content": "x"}]},
    {"messages": [{"role": "user", "content": "a"}, "x"]},
    {"messages": [{"role": ["user"], "content": "a"}, {"role": "assistant", "content": "b"}]},
    {"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]},
    _m(("user", "a"), ("bot", "b")),
    _m(("assistant", "b")),
    _m(("system", "s"), ("assistant", "b")),
    _m(("user", "a"), ("assistant", "b"), ("user", "c")),
    _m(("user", "  "), ("assistant", "b")),
    _m(("user", "a"), ("assistant", "\n\t\u3000")),
    _m(("user", 3), ("assistant", "b")),
    _m(("user", "a"), ("assistant", None)),
    _m(("user", "a"), ("assistant", "b")),
    _m(("system", "s"), ("user", " a "), ("assistant", "b"), ("user", "c"), ("assistant", "é")),
    {**_m(("user", "a"), ("assistant", "b")), "prompt_id": 7, "extra": [1]},
]


@pytest.mark.parametrize("row", _TRICKY)
def test_fast_path_accepts_exactly_the_rows_without_problems(row: object) -> None:
    valid = valid_turns(row)
    assert (valid is not None) == (row_problems(row) == [])
    if valid is not None:
        messages = row["messages"]  # type: ignore[index]
        assert valid == ([(m["role"], m["content"]) for m in messages], sum(len(m["content"]) for m in messages))
