from __future__ import annotations

from pathlib import Path

import pytest

from finetune.data import DataError
from finetune.data.layout import group_files, splits_in


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")


def test_single_file_is_its_stem_and_train(tmp_path: Path) -> None:
    _touch(tmp_path, "train_sft.jsonl")
    found = splits_in(tmp_path / "train_sft.jsonl")
    assert found == {"train_sft": [tmp_path / "train_sft.jsonl"], "train": [tmp_path / "train_sft.jsonl"]}


def test_folder_layouts(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "test_sft.jsonl",
        "data/train_sft-00002-of-00003-abc123.parquet",
        "data/train_sft-00000-of-00003-abc123.parquet",
        "data/train_sft-00001-of-00003-abc123.parquet",
        "test_gen/b.csv",
        "test_gen/a.csv",
        "README.md",
    )
    found = {k: [p.relative_to(tmp_path).as_posix() for p in v] for k, v in splits_in(tmp_path).items()}
    assert found == {
        "test_sft": ["test_sft.jsonl"],
        "train_sft": [f"data/train_sft-0000{i}-of-00003-abc123.parquet" for i in range(3)],
        "test_gen": ["test_gen/a.csv", "test_gen/b.csv"],
    }


def test_two_formats_for_one_split_need_a_format(tmp_path: Path) -> None:
    _touch(tmp_path, "train.jsonl", "train.parquet")
    with pytest.raises(DataError, match="several formats"):
        splits_in(tmp_path)
    assert list(splits_in(tmp_path, "parquet")) == ["train"]


def test_hub_listing_groups_like_a_folder() -> None:
    names = ["README.md", "data/test_sft-00000-of-00001.parquet", "default/train/0000.parquet", ".gitattributes"]
    assert group_files(names) == {"test_sft": ["data/test_sft-00000-of-00001.parquet"]}
    assert group_files([n.removeprefix("default/") for n in names if n.startswith("default/")]) == {
        "train": ["train/0000.parquet"]
    }


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: no such file or folder"):
        splits_in(tmp_path / "nope")
