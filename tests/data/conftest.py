"""Small chat datasets written on the fly, plus the shipped 21-row real sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "maas_chat_completion_validation.jsonl"


def chat_row(i: int, *, turns: int = 1, prompt_id: bool = True) -> dict:
    messages = []
    for t in range(turns):
        messages.append({"content": f"question {i}.{t} é", "role": "user"})
        messages.append({"content": f"answer {i}.{t}", "role": "assistant"})
    row = {"prompt": messages[0]["content"], "messages": messages}
    if prompt_id:
        row["prompt_id"] = f"id-{i:05d}"
    return row


def write_jsonl(path: Path, rows: list, *, blank_every: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for n, row in enumerate(rows, start=1):
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
            if blank_every and n % blank_every == 0:
                f.write("\n")
    return path


def write_parquet(path: Path, rows: list[dict], row_group_size: int = 7) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def chat_dir(tmp_path: Path) -> Path:
    """A folder with train (100 rows, 2 turns) and test (40 rows, ids 1000+) JSONL splits."""
    root = tmp_path / "src"
    write_jsonl(root / "train.jsonl", [chat_row(i, turns=2) for i in range(100)])
    write_jsonl(root / "test.jsonl", [chat_row(1000 + i) for i in range(40)])
    return root


@pytest.fixture
def sample_file() -> Path:
    return FIXTURE
