from __future__ import annotations

import pytest

from finetune.data import DataError, HubSource, LocalSource, PrepareRequest

SRC = LocalSource(path="data")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"splits": {"test": "t"}}, "'train' role"),
        ({"splits": {"train": "a", "eval": "b"}}, "unknown split role(s) eval"),
        ({"splits": {"train": "a"}, "percentage": 0}, "(0, 100]"),
        ({"splits": {"train": "a"}, "percentage": 101}, "(0, 100]"),
        ({"splits": {"train": "a"}, "percentage": {"tain": 5}}, "unknown role(s) tain"),
        ({"splits": {"train": "a"}, "sampling": "tail"}, "unknown sampling"),
        ({"splits": {"train": "a"}, "max_rows": 0}, "positive integer"),
        ({"splits": {"train": "a"}, "invalid_row_policy": "skip"}, "invalid_row_policy"),
        ({"splits": {"train": "a"}, "validation_from_train": 1.0}, "(0, 1)"),
        ({"splits": {"train": "a", "validation": "v"}, "validation_from_train": 0.1}, "choose one"),
    ],
)
def test_invalid_requests_say_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        PrepareRequest(source=SRC, **kwargs)


def test_sources_need_exactly_one_location() -> None:
    with pytest.raises(DataError, match="exactly one"):
        LocalSource()
    with pytest.raises(DataError, match="exactly one"):
        LocalSource(path="a", files={"train": "a.jsonl"})
    with pytest.raises(DataError, match="unknown data format"):
        LocalSource(path="a", format="xlsx")
    with pytest.raises(DataError, match="invalid hub dataset id"):
        HubSource("owner/name with space")


def test_per_role_settings_and_read_only_mappings() -> None:
    splits = {"test": "test_sft", "train": "train_sft"}
    req = PrepareRequest(
        source=LocalSource(files={"train_sft": "a.jsonl", "test_sft": ["b.jsonl", "c.jsonl"]}),
        splits=splits,
        percentage={"train": 5},
        max_rows={"test": 10},
        validation_from_train=0.1,
    )
    splits["train"] = "changed"
    assert dict(req.splits) == {"train": "train_sft", "test": "test_sft"}  # copied, in role order
    assert req.roles() == ("train", "validation", "test")
    assert (req.percentage_for("train"), req.percentage_for("test")) == (5.0, 100.0)
    assert (req.max_rows_for("train"), req.max_rows_for("test")) == (None, 10)
    assert req.source.files["test_sft"] == ("b.jsonl", "c.jsonl")
    with pytest.raises(TypeError):
        req.splits["train"] = "x"  # type: ignore[index]
