"""Hub sources without network: a fake HF cache, offline mode, and an unreachable hub."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from finetune.data import HubSource, PrepareRequest, SourceUnavailableError, prepare, probe
from finetune.data.prepare import cache_key
from tests.data.conftest import chat_row, read_jsonl, write_parquet

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def _snapshot(hub: Path, commit: str, ref: str | None = "main", rows: int = 40) -> None:
    repo = hub / "datasets--HuggingFaceH4--ultrachat_mini"
    snap = repo / "snapshots" / commit / "data"
    write_parquet(snap / "train_sft-00000-of-00002.parquet", [chat_row(i) for i in range(rows // 2)])
    write_parquet(snap / "train_sft-00001-of-00002.parquet", [chat_row(i) for i in range(rows // 2, rows)])
    write_parquet(snap / "test_sft-00000-of-00001.parquet", [chat_row(500 + i) for i in range(10)])
    if ref:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)


def _req(revision: str | None = None, **kw) -> PrepareRequest:
    return PrepareRequest(
        HubSource("HuggingFaceH4/ultrachat_mini", revision=revision), {"train": "train_sft", "test": "test_sft"}, **kw
    )


def test_cached_hub_dataset_prepares_offline(tmp_path: Path, hub_cache: Path) -> None:
    _snapshot(hub_cache, COMMIT_A)
    res = prepare(_req(percentage=50), tmp_path / "out", tmp_path / "cache")
    assert res.source["commit"] == COMMIT_A and res.source["revision"] is None
    assert res.roles["train"].kept_rows == 20 and res.roles["test"].kept_rows == 5
    assert [r["prompt_id"] for r in read_jsonl(tmp_path / "out" / "train.jsonl")] == [f"id-{i:05d}" for i in range(20)]
    assert probe(_req(percentage=50), tmp_path / "cache").cached


def test_floating_revision_follows_the_cached_ref(tmp_path: Path, hub_cache: Path) -> None:
    _snapshot(hub_cache, COMMIT_A)
    floating, pinned = cache_key(_req()), cache_key(_req(COMMIT_A))
    _snapshot(hub_cache, COMMIT_B)  # main moved
    assert cache_key(_req()) != floating
    assert cache_key(_req(COMMIT_A)) == pinned


def test_offline_and_not_cached_fails_at_once_with_a_fix(tmp_path: Path, hub_cache: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(SourceUnavailableError) as err:
        prepare(_req(), tmp_path / "out", tmp_path / "cache")
    assert time.perf_counter() - started < 1.0
    assert "not in the local cache and offline mode is on" in str(err.value)
    assert "use a local path" in str(err.value)
    result = probe(_req(), tmp_path / "cache")
    assert not result.cached and result.key is None and "offline" in result.reason


def test_unreachable_hub_fails_within_a_second(tmp_path: Path, hub_cache: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed.getsockname()[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    started = time.perf_counter()
    try:
        with pytest.raises(SourceUnavailableError, match="cannot be reached"):
            prepare(_req(), tmp_path / "out", tmp_path / "cache")
    finally:
        closed.close()
    assert time.perf_counter() - started < 1.0


def test_partial_snapshot_is_not_enough(tmp_path: Path, hub_cache: Path) -> None:
    _snapshot(hub_cache, COMMIT_A)
    req = PrepareRequest(HubSource("HuggingFaceH4/ultrachat_mini"), {"train": "train_gen"})
    with pytest.raises(SourceUnavailableError, match="offline"):
        prepare(req, None, tmp_path / "cache")
