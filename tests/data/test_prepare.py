from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from finetune.data import DataError, InvalidRowsError, LocalSource, PrepareRequest, prepare, probe, readers
from finetune.data.prepare import cache_key
from tests.data.conftest import chat_row, read_jsonl, write_jsonl, write_parquet


def _req(path: Path, **kw) -> PrepareRequest:
    kw.setdefault("splits", {"train": "train", "test": "test"})
    return PrepareRequest(source=LocalSource(path=str(path)), **kw)


def test_real_sample_head_percentage_like_datasets(tmp_path: Path, sample_file: Path) -> None:
    assert hashlib.sha256(sample_file.read_bytes()).hexdigest().startswith("67e938560d36")
    req = PrepareRequest(LocalSource(path=str(sample_file)), {"train": "train"}, percentage=50)
    res = prepare(req, tmp_path / "out", tmp_path / "cache")
    train = res.roles["train"]
    # datasets' split="train[:50%]" keeps int(round(21 * 50 / 100)) = 10 rows, the first ones.
    assert (train.source_rows, train.kept_rows, train.dropped_rows) == (21, 10, 0)
    source_rows = [json.loads(line) for line in sample_file.read_text().splitlines()]
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == source_rows[:10]
    assert train.stats["rows"] == 10 and train.stats["turns"] == 20
    assert train.stats["chars"] == sum(len(m["content"]) for r in source_rows[:10] for m in r["messages"])
    assert train.stats["approx_tokens"] >= train.stats["chars"] // 4
    assert train.sha256 == hashlib.sha256((tmp_path / "out" / "train.jsonl").read_bytes()).hexdigest()


def test_output_is_byte_identical_across_runs_and_formats(tmp_path: Path) -> None:
    rows = [chat_row(i, turns=2) for i in range(50)]
    write_jsonl(tmp_path / "j" / "train.jsonl", rows)
    write_parquet(tmp_path / "p" / "data" / "train-00000-of-00001.parquet", rows)
    a = prepare(_req(tmp_path / "j", splits={"train": "train"}), tmp_path / "oa", tmp_path / "ca")
    b = prepare(_req(tmp_path / "j", splits={"train": "train"}), tmp_path / "ob", tmp_path / "cb")
    c = prepare(_req(tmp_path / "p", splits={"train": "train"}), tmp_path / "oc", tmp_path / "cc")
    data = (tmp_path / "oa" / "train.jsonl").read_bytes()
    assert data == (tmp_path / "ob" / "train.jsonl").read_bytes() == (tmp_path / "oc" / "train.jsonl").read_bytes()
    assert a.hashes() == b.hashes() == c.hashes()
    assert a.key == b.key != c.key  # same content, but a different source file
    first = data.split(b"\n")[0].decode()
    assert first.startswith('{"prompt":"question 0.0 é","messages":[{"content":') and data.endswith(b"\n")


def test_unchanged_request_is_a_cache_hit_that_reads_no_rows(tmp_path: Path, chat_dir: Path, monkeypatch) -> None:
    req = _req(chat_dir, percentage=10)
    first = prepare(req, tmp_path / "out", tmp_path / "cache")
    assert not first.cache_hit
    assert probe(req, tmp_path / "cache").hashes == first.hashes()

    def no_reading(*_a, **_k):
        raise AssertionError("a cache hit must not read rows")

    monkeypatch.setattr(readers, "_jsonl_selected", no_reading)
    events = []
    again = prepare(req, tmp_path / "out", tmp_path / "cache", progress=events.append)
    assert again.cache_hit and again.hashes() == first.hashes() and list(again.roles) == ["train", "test"]
    assert [e.kind for e in events] == ["resolving", "cache_hit", "done"]
    assert os.path.samefile(again.roles["train"].path, tmp_path / "out" / "train.jsonl")


def test_key_changes_with_content_and_settings_not_with_location(tmp_path: Path, chat_dir: Path) -> None:
    cache = tmp_path / "cache"
    base = cache_key(_req(chat_dir, percentage=10), cache)
    assert cache_key(_req(chat_dir, percentage=20), cache) != base
    assert cache_key(_req(chat_dir, percentage=10, sampling="random"), cache) != base
    assert cache_key(_req(chat_dir, percentage=10, max_rows=3), cache) != base
    moved = tmp_path / "moved"
    chat_dir.rename(moved)
    assert cache_key(_req(moved, percentage=10), cache) == base
    write_jsonl(moved / "test.jsonl", [chat_row(7)])
    assert cache_key(_req(moved, percentage=10), cache) != base


def test_edited_output_or_source_is_never_trusted(tmp_path: Path, chat_dir: Path) -> None:
    req = _req(chat_dir)
    first = prepare(req, tmp_path / "out", tmp_path / "cache")
    out = tmp_path / "out" / "train.jsonl"
    with open(out, "a") as f:  # edits the hard-linked cache file in place too
        f.write('{"oops":1}\n')
    again = prepare(req, tmp_path / "out", tmp_path / "cache")
    assert not again.cache_hit and again.hashes() == first.hashes()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == first.roles["train"].sha256


def test_random_sampling_is_seeded_and_keeps_source_order(tmp_path: Path, chat_dir: Path) -> None:
    def ids(seed: int, cache: str) -> list[str]:
        res = prepare(_req(chat_dir, percentage=30, sampling="random", seed=seed), tmp_path / cache, tmp_path / cache)
        return [r["prompt_id"] for r in read_jsonl(Path(res.roles["train"].path))]

    a, b, c = ids(1, "a"), ids(1, "b"), ids(2, "c")
    assert a == b != c and len(a) == 30 and a == sorted(a) and a != [f"id-{i:05d}" for i in range(30)]


def test_max_rows_and_validation_carved_from_train(tmp_path: Path, chat_dir: Path) -> None:
    req = _req(chat_dir, percentage={"train": 50}, max_rows={"test": 5}, validation_from_train=0.2)
    res = prepare(req, tmp_path / "out", tmp_path / "cache")
    assert list(res.roles) == ["train", "validation", "test"]
    assert (res.roles["train"].kept_rows, res.roles["validation"].kept_rows, res.roles["test"].kept_rows) == (40, 10, 5)
    train = {r["prompt_id"] for r in read_jsonl(tmp_path / "out" / "train.jsonl")}
    val = {r["prompt_id"] for r in read_jsonl(tmp_path / "out" / "validation.jsonl")}
    assert not train & val and train | val == {f"id-{i:05d}" for i in range(50)}
    assert {o.role: o.rows for o in res.overlap} == {"validation": 0, "test": 0}


def test_overlap_by_prompt_id_and_by_content(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_jsonl(src / "train.jsonl", [chat_row(i) for i in range(10)])
    same_id = {**chat_row(50), "prompt_id": "id-00001"}
    same_text = chat_row(2, prompt_id=False)
    write_jsonl(src / "test.jsonl", [chat_row(40), same_id, same_text])
    res = prepare(_req(src), tmp_path / "out", tmp_path / "cache")
    (ov,) = res.overlap
    assert (ov.role, ov.rows, ov.by_prompt_id, ov.by_content) == ("test", 2, 1, 1)
    assert ov.examples[0].endswith("test.jsonl:2 (prompt_id)")


def _bad_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    rows = [chat_row(i) for i in range(8)]
    rows[2]["messages"][-1]["role"] = "user"
    rows[5]["messages"][0]["content"] = ""
    write_jsonl(src / "train.jsonl", rows, blank_every=4)
    return src


def test_invalid_rows_fail_by_default_with_path_and_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidRowsError) as err:
        prepare(_req(_bad_source(tmp_path), splits={"train": "train"}), tmp_path / "out", tmp_path / "cache")
    assert "train.jsonl:3: invalid chat rows (2 of 8 train rows)" in str(err.value)
    assert "'drop'" in str(err.value)
    assert [(b.line, b.reasons) for b in err.value.bad_rows] == [
        (3, ("last turn is 'user', not 'assistant'",)),
        (7, ("messages[0].content is empty",)),
    ]
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache").rglob("*.jsonl")) and not list((tmp_path / "cache").rglob("manifest.json"))


def test_drop_policy_drops_and_reports(tmp_path: Path) -> None:
    req = _req(_bad_source(tmp_path), splits={"train": "train"}, invalid_row_policy="drop")
    res = prepare(req, tmp_path / "out", tmp_path / "cache")
    train = res.roles["train"]
    assert (train.selected_rows, train.kept_rows, train.dropped_rows) == (8, 6, 2)
    assert [b.line for b in train.bad_rows] == [3, 7]


def test_interrupted_preparation_leaves_nothing_trusted(tmp_path: Path, chat_dir: Path) -> None:
    req = _req(chat_dir)

    def boom(event) -> None:
        if event.kind == "split_started" and event.role == "test":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(req, tmp_path / "out", tmp_path / "cache", progress=boom)
    assert not probe(req, tmp_path / "cache").cached
    assert not list((tmp_path / "cache").rglob("*.partial"))
    res = prepare(req, tmp_path / "out", tmp_path / "cache")
    assert not res.cache_hit and res.roles["test"].kept_rows == 40


def test_missing_split_and_file_errors(tmp_path: Path, chat_dir: Path) -> None:
    with pytest.raises(DataError, match=r"source split 'train_sft' not found in .*src \(available: test, train\)"):
        prepare(_req(chat_dir, splits={"train": "train_sft"}), None, tmp_path / "cache")
    req = PrepareRequest(LocalSource(files={"train": str(tmp_path / "gone.jsonl")}), {"train": "train"})
    with pytest.raises(DataError, match=r"gone\.jsonl: source file not found"):
        prepare(req, None, tmp_path / "cache")
    empty = write_jsonl(tmp_path / "e" / "train.jsonl", [chat_row(0)])
    with pytest.raises(DataError, match="no train rows"):
        prepare(_req(empty, splits={"train": "train"}, percentage=10), None, tmp_path / "cache")


def test_out_dir_none_leaves_files_in_the_cache(tmp_path: Path, chat_dir: Path) -> None:
    res = prepare(_req(chat_dir), None, tmp_path / "cache")
    assert Path(res.roles["train"].path).parent.parent == tmp_path / "cache" / "prepared"


def test_threads_preparing_the_same_request_build_it_once_and_all_succeed(tmp_path: Path) -> None:
    """Specs of one folder share a data cache and plan concurrently: one builds the entry, the others reuse it."""
    from concurrent.futures import ThreadPoolExecutor

    write_jsonl(tmp_path / "src" / "train.jsonl", [chat_row(i, turns=2) for i in range(2000)])
    req = _req(tmp_path / "src", splits={"train": "train"})
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _i: prepare(req, None, tmp_path / "cache"), range(6)))
    assert len({r.roles["train"].sha256 for r in results}) == 1
    assert sum(not r.cache_hit for r in results) == 1
