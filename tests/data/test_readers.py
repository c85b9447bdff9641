from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.data import DataError
from finetune.data.readers import count_rows, iter_selected
from tests.data.conftest import chat_row, write_jsonl, write_parquet


def test_jsonl_skips_blank_lines_and_reports_real_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [chat_row(i) for i in range(10)], blank_every=3)
    assert count_rows(path, "jsonl") == 10
    rows = list(iter_selected(path, "jsonl", [0, 3, 9]))
    assert [(r.index, r.line, r.data["prompt_id"]) for r in rows] == [
        (0, 1, "id-00000"),
        (3, 5, "id-00003"),
        (9, 13, "id-00009"),
    ]


def test_corrupt_jsonl_line_names_path_and_line_but_only_when_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [chat_row(0), '{"messages": [', chat_row(2)])
    assert [r.index for r in iter_selected(path, "jsonl", [0, 2])] == [0, 2]  # an unselected bad line is not read
    with pytest.raises(DataError, match=r"a\.jsonl:2: not valid JSON"):
        list(iter_selected(path, "jsonl", [1]))


def test_parquet_reads_only_selected_rows_across_row_groups(tmp_path: Path) -> None:
    rows = [chat_row(i) for i in range(30)]
    path = write_parquet(tmp_path / "a.parquet", rows, row_group_size=7)
    assert count_rows(path, "parquet") == 30
    got = list(iter_selected(path, "parquet", [0, 6, 7, 20, 29]))
    assert [r.index for r in got] == [0, 6, 7, 20, 29]
    assert [r.data for r in got] == [rows[i] for i in (0, 6, 7, 20, 29)]
    assert list(got[0].data) == ["prompt", "messages", "prompt_id"]  # source column order kept


def test_csv_decodes_json_cells_and_json_arrays_work(tmp_path: Path) -> None:
    row = chat_row(1)
    csv = tmp_path / "a.csv"
    csv.write_text('prompt,messages\n"q","' + json.dumps(row["messages"]).replace('"', '""') + '"\n')
    (got,) = iter_selected(csv, "csv", [0])
    assert got.data == {"prompt": "q", "messages": row["messages"]} and got.line == 2
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([chat_row(0), chat_row(1)]))
    assert count_rows(arr, "json") == 2
    assert [r.data for r in iter_selected(arr, "json", [1])] == [chat_row(1)]


def test_corrupt_parquet_is_a_data_error_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: corrupt or unreadable parquet file"):
        count_rows(path, "parquet")
