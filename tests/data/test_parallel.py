"""Large passes run in worker processes: same bytes, stats, bad rows, overlap and errors as in one process."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from finetune.data import DataError, InvalidRowsError, LocalSource, PrepareRequest, chunks, prepare
from tests.data.conftest import chat_row, write_jsonl, write_parquet


@pytest.fixture
def parallel(monkeypatch) -> None:
    """Every pass goes to 2 workers, in chunks of 7 rows (and so many tasks per file)."""
    monkeypatch.setattr(chunks, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 7)
    monkeypatch.setattr(chunks, "workers", lambda: 2)


def _source(root: Path, fmt: str) -> Path:
    rows = [chat_row(i, turns=1 + i % 3) for i in range(120)]
    rows[10]["messages"][-1]["role"] = "user"  # two bad rows, one per file
    rows[95]["messages"][0]["content"] = " "
    test = [chat_row(i) for i in range(30)] + [chat_row(2000 + i) for i in range(20)]  # 29 by id (10 is dropped)
    test += [chat_row(i, turns=1 + i % 3, prompt_id=False) for i in range(40, 45)]  # 5 by content
    if fmt == "jsonl":
        write_jsonl(root / "train-00000-of-00002.jsonl", rows[:60], blank_every=9)
        write_jsonl(root / "train-00001-of-00002.jsonl", rows[60:])
        write_jsonl(root / "test.jsonl", test)
    else:
        write_parquet(root / "data" / "train-00000-of-00002.parquet", rows[:60], row_group_size=5)
        write_parquet(root / "data" / "train-00001-of-00002.parquet", rows[60:], row_group_size=13)
        write_parquet(root / "data" / "test-00000-of-00001.parquet", test, row_group_size=4)
    return root


def _run(src: Path, out: Path, **kw):
    kw.setdefault("invalid_row_policy", "drop")
    req = PrepareRequest(LocalSource(path=str(src)), {"train": "train", "test": "test"}, **kw)
    res = prepare(req, out / "out", out / "cache")
    return res, {role: Path(r.path).read_bytes() for role, r in res.roles.items()}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize(
    "settings",
    [{}, {"sampling": "random", "percentage": 60, "validation_from_train": 0.25}],
    ids=["head", "random+validation"],
)
def test_workers_give_the_same_result_as_one_process(tmp_path: Path, monkeypatch, fmt: str, settings: dict) -> None:
    src = _source(tmp_path / "src", fmt)
    one, one_bytes = _run(src, tmp_path / "one", **settings)
    monkeypatch.setattr(chunks, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 7)
    monkeypatch.setattr(chunks, "workers", lambda: 2)
    two, two_bytes = _run(src, tmp_path / "two", **settings)
    assert two_bytes == one_bytes and two.hashes() == one.hashes()
    assert [replace(r, path="") for r in two.roles.values()] == [replace(r, path="") for r in one.roles.values()]
    assert two.overlap == one.overlap
    if not settings:
        assert (
            one.roles["train"].dropped_rows == 2
            and one.overlap[0].by_prompt_id == 29
            and one.overlap[0].by_content == 5
        )


def test_errors_keep_path_and_line_with_workers_on(tmp_path: Path, parallel) -> None:
    src = tmp_path / "src"
    write_jsonl(src / "train.jsonl", [chat_row(i) for i in range(30)] + ['{"messages": ['], blank_every=4)
    with pytest.raises(DataError, match=r"train\.jsonl:38: not valid JSON") as err:
        prepare(PrepareRequest(LocalSource(path=str(src)), {"train": "train"}), None, tmp_path / "cache")
    assert err.value.line == 38 and err.value.path.endswith("train.jsonl")
    assert not list((tmp_path / "cache").rglob("*.partial")) and not list((tmp_path / "cache").rglob("*.jsonl"))


def test_invalid_rows_fail_with_the_first_bad_row(tmp_path: Path, parallel) -> None:
    src = _source(tmp_path / "src", "parquet")
    with pytest.raises(InvalidRowsError, match=r"train-00000-of-00002\.parquet:11: invalid chat rows \(2 of 120"):
        _run(src, tmp_path, invalid_row_policy="error")


def test_data_errors_survive_pickling() -> None:
    err = InvalidRowsError("bad rows", path="a.jsonl", line=3, hint="fix it", bad_rows=[1])
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.path, back.line, back.hint, back.bad_rows) == (
        InvalidRowsError,
        str(err),
        "a.jsonl",
        3,
        "fix it",
        [1],
    )


def test_interrupt_during_a_parallel_pass_leaves_nothing_trusted(tmp_path: Path, parallel, monkeypatch) -> None:
    import multiprocessing
    import sys

    from finetune.data import probe

    monkeypatch.setattr(sys.modules["finetune.data.prepare"], "_PROGRESS_EVERY", 10)
    src = _source(tmp_path / "src", "parquet")
    req = PrepareRequest(LocalSource(path=str(src)), {"train": "train", "test": "test"}, invalid_row_policy="drop")

    def boom(event) -> None:
        if event.kind == "rows":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(req, tmp_path / "out", tmp_path / "cache", progress=boom)
    assert not multiprocessing.active_children()
    assert not probe(req, tmp_path / "cache").cached and not list((tmp_path / "cache").rglob("*.partial"))
    assert prepare(req, tmp_path / "out", tmp_path / "cache").roles["train"].kept_rows == 118


def test_workers_spill_files_are_taken_or_removed(tmp_path: Path, parallel) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    src = _source(tmp_path / "src", "parquet")
    res, _ = _run(src, tmp_path)
    entry = tmp_path / "cache" / "prepared" / res.key
    assert sorted(p.name for p in entry.iterdir()) == ["manifest.json", "test.jsonl", "train.jsonl"]
    rows = [{**chat_row(i), "when": datetime.date(2024, 1, 1) if i == 40 else None} for i in range(60)]
    schema = pa.Table.from_pylist([rows[40]]).schema
    (tmp_path / "bad").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "bad" / "train.parquet", row_group_size=5)
    with pytest.raises(DataError, match=r"train\.parquet:41: a value JSON cannot hold"):
        prepare(PrepareRequest(LocalSource(path=str(tmp_path / "bad")), {"train": "train"}), None, tmp_path / "c2")
    assert not list((tmp_path / "c2").rglob("*.partial"))
