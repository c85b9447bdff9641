"""The public surface: cheap import, summary lines, JSON round trip, and the datasets-equivalent head slice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import finetune.data as data
from finetune.data import LocalSource, PrepareRequest, PrepareResult, prepare, render_summary
from tests.data.conftest import chat_row, write_jsonl


def test_public_api_is_pinned() -> None:
    assert sorted(data.__all__) == sorted(
        ["ROLES", "BadRow", "DataError", "HubSource", "InvalidRowsError", "LocalSource", "Overlap", "PrepareRequest",
         "PrepareResult", "ProbeResult", "ProgressEvent", "RoleResult", "SourceUnavailableError", "cache_key",
         "prepare", "probe", "render_summary"]
    )  # fmt: skip


def test_import_is_cheap() -> None:
    heavy = "('pyarrow', 'datasets', 'huggingface_hub')"
    code = f"import sys, finetune.data; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_summary_and_json_round_trip(tmp_path: Path, chat_dir: Path) -> None:
    write_jsonl(chat_dir / "test.jsonl", [chat_row(3, turns=2), {"messages": []}])
    req = PrepareRequest(
        LocalSource(path=str(chat_dir)),
        {"train": "train", "test": "test"},
        percentage={"train": 10},
        invalid_row_policy="drop",
    )
    res = prepare(req, tmp_path / "out", tmp_path / "cache")
    lines = render_summary(res)
    assert lines[0].startswith("data prepared: local files [key ")
    assert any(line.strip().startswith("train") and "10 of 100 rows from train" in line for line in lines)
    assert any("dropped" in line and "test.jsonl:2: 'messages' is empty" in line for line in lines)
    assert any("warning: 1 test row(s) also in train (1 by prompt_id" in line for line in lines)
    as_json = json.loads(json.dumps(res.to_dict()))
    assert PrepareResult.from_dict(as_json) == res
    again = prepare(req, tmp_path / "out", tmp_path / "cache")
    assert "nothing re-prepared (cache hit)" in render_summary(again)[0]


def test_head_matches_datasets_percent_slice(tmp_path: Path, sample_file: Path) -> None:
    from datasets import load_dataset

    for pct in (5, 33, 100):
        req = PrepareRequest(LocalSource(path=str(sample_file)), {"train": "train"}, percentage=pct)
        res = prepare(req, None, tmp_path / "cache")
        ours = [json.loads(x) for x in Path(res.roles["train"].path).read_text().splitlines()]
        theirs = load_dataset(
            "json", data_files=str(sample_file), split=f"train[0%:{pct}%]", cache_dir=str(tmp_path / "hf")
        ).to_list()
        assert ours == theirs, pct
