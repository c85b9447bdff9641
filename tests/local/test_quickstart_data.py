"""The quickstart's shipped chats: rebuilt byte for byte by their generator, and honest about the smoke test (its
questions are held out of training, so the answer shows what the model learned, not what it memorised)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import QUICKSTART


def questions(path: Path) -> set[str]:
    rows = [json.loads(line)["messages"] for line in path.read_text(encoding="utf-8").splitlines()]
    return {m["content"] for messages in rows for m in messages if m["role"] == "user"}


def test_generator_rebuilds_the_shipped_files(tmp_path):
    subprocess.run([sys.executable, str(QUICKSTART / "generate.py"), str(tmp_path)], check=True, capture_output=True)
    for name in ("train", "test", "sample"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (QUICKSTART / f"{name}.jsonl").read_bytes(), name


def test_smoke_test_questions_are_not_training_rows():
    smoke = questions(QUICKSTART / "sample.jsonl")
    assert "How often should I water my snake plant?" in smoke
    assert not smoke & questions(QUICKSTART / "train.jsonl")
    assert not smoke & questions(QUICKSTART / "test.jsonl")
    # ...while the facts they ask about are taught in other words
    train = questions(QUICKSTART / "train.jsonl")
    assert {"How much water does a snake plant need?", "When do I water a snake plant?"} <= train
