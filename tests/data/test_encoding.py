"""The fast (orjson) paths write and read what the json module does, so output bytes and hashes are unchanged."""

from __future__ import annotations

import datetime
import json
import random
from collections import OrderedDict
from pathlib import Path

import pytest

from finetune.data import DataError, LocalSource, PrepareRequest, prepare
from finetune.data.readers import iter_selected, loads_line
from finetune.data.writer import dumps_row, encode_row, json_plain
from tests.data.conftest import chat_row, write_parquet


def _reference(row: object) -> bytes:
    return dumps_row(row).encode("utf-8", "surrogatepass")


def _all_code_points() -> list[str]:
    """Every code point but the surrogates, in strings of 512, each between two ASCII letters."""
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    return ["a" + "b".join(points[i : i + 512]) + "z" for i in range(0, len(points), 512)]


def test_every_code_point_is_written_as_json_writes_it() -> None:
    for text in _all_code_points():
        row = {"messages": [{"role": "user", "content": text}], text[:3]: text}
        assert encode_row(row) == encode_row(row, plain=True) == _reference(row)


EDGE_ROWS = [
    {"a": 1e-05, "b": 8.1e-05, "c": 1e16, "d": 0.1, "e": -0.0},  # orjson writes 1e-5 and 0.000081: json is used
    {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")},  # json writes NaN / Infinity, orjson null
    {"big": 2**64, "small": -(2**63) - 1, "edge": [2**64 - 1, -(2**63)]},  # past 64 bits orjson refuses
    {"lone": "\ud800 x \udfff"},  # a lone surrogate: orjson refuses, json writes it (surrogatepass)
    {1: "int key", None: "none key"},  # non-str keys: json writes them as strings, orjson refuses
    {"t": (1, "a", (True, None)), "empty": {}, "e2": [], "s": ""},
    {"ctl": "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u2028\u2029\ufeff'},
    {"deep": json.loads("[" * 400 + "]" * 400)},  # deeper than orjson goes
    OrderedDict(b=1, a=2),  # a dict subclass
    {"bool": [True, False], "int": [0, -1, 2**63 - 1]},
]


@pytest.mark.parametrize("row", EDGE_ROWS, ids=range(len(EDGE_ROWS)))
def test_edge_values_are_written_as_json_writes_them(row: object) -> None:
    assert encode_row(row) == _reference(row)


def test_what_json_cannot_write_still_fails() -> None:
    for row in ({"when": datetime.datetime(2024, 1, 1)}, {"raw": b"bytes"}, {"s": {1, 2}}):
        with pytest.raises(TypeError):
            _reference(row)
        with pytest.raises(TypeError):
            encode_row(row)
        with pytest.raises(TypeError):  # even when a caller wrongly says the row is plain
            encode_row(row, plain=True)


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, rng.randrange(-10**6, 10**6)])
    if kind == 2:
        return rng.choice([rng.random() * 10 ** rng.randint(-12, 20), float("nan"), 1e-7, 123.0])
    if kind in (3, 4):
        return "".join(chr(rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0x110000)])) for _ in range(8))
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(_random_value(rng, 4)): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_random_rows_are_written_and_read_as_json_does() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        row = {"messages": _random_value(rng), "other": _random_value(rng)}
        data = _reference(row)
        assert encode_row(row) == data
        if "NaN" in dumps_row(row) or any(0xD800 <= ord(c) <= 0xDFFF for c in dumps_row(row)):
            continue  # NaN != NaN; surrogates are compared in the edge cases
        expected = json.loads(data)
        got, plain = loads_line(data)
        assert got == expected and plain <= json_plain(expected)  # plain: no need to look again; False: look
        assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(expected)]


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in (k, *_leaves(v))]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


@pytest.mark.parametrize(
    ("line", "plain"),
    [
        (b'{"big": 18446744073709551616, "neg": -9223372036854775809}', False),  # orjson would read floats
        (b'{"f": 1e-05, "g": 1.0}', False),
        (b'{"n": NaN, "i": -Infinity}', False),  # json reads these, orjson refuses
        (b'{"s": "\\ud800"}', False),  # a lone surrogate escape
        (b'\xef\xbb\xbf{"bom": 1}', False),  # json reads bytes with a UTF-8 BOM
        (b'{"a": 1, "a": 2, "b": [1, {"c": null}]}', True),  # the last duplicate wins in both
    ],
)
def test_lines_are_read_as_json_reads_them(line: bytes, plain: bool) -> None:
    got, got_plain = loads_line(line)
    expected = json.loads(line)
    assert dumps_row(got) == dumps_row(expected) and got_plain == plain


@pytest.mark.parametrize("line", [b'{"messages": [', b'{"a": 1} x', b'"\xff"', b"[1,]", b"\x00"])
def test_bad_lines_raise_what_json_raises(line: bytes) -> None:
    with pytest.raises(Exception) as expected:
        json.loads(line)
    with pytest.raises(type(expected.value)) as got:
        loads_line(line)
    assert str(got.value) == str(expected.value)


def test_float_and_big_int_rows_keep_their_bytes_through_prepare(tmp_path: Path) -> None:
    rows = [{**chat_row(i), "score": 1e-05 * (i + 1), "n": 2**64 + i, "w": float(i)} for i in range(12)]
    src = tmp_path / "j"
    src.mkdir()
    (src / "train.jsonl").write_text("".join(dumps_row(r) + "\n" for r in rows))
    write_parquet(tmp_path / "p" / "data" / "train-00000-of-00001.parquet", [{**r, "n": i} for i, r in enumerate(rows)])
    for folder, expected in (("j", rows), ("p", [{**r, "n": i} for i, r in enumerate(rows)])):
        req = PrepareRequest(LocalSource(path=str(tmp_path / folder)), {"train": "train"})
        res = prepare(req, None, tmp_path / "cache")
        assert Path(res.roles["train"].path).read_bytes() == b"".join(_reference(r) + b"\n" for r in expected)
    assert b'"score":1e-05' in (src / "train.jsonl").read_bytes()


def test_parquet_rows_are_plain_only_without_float_or_other_types(tmp_path: Path) -> None:
    plain = write_parquet(tmp_path / "a.parquet", [{**chat_row(0), "n": 3, "tags": ["x"], "ok": True}])
    floats = write_parquet(tmp_path / "b.parquet", [{**chat_row(0), "meta": {"w": 0.5}}])
    dates = write_parquet(tmp_path / "c.parquet", [{**chat_row(0), "when": datetime.date(2024, 1, 2)}])
    assert [r.plain for p in (plain, floats, dates) for r in iter_selected(p, "parquet", [0])] == [True, False, False]


def test_a_value_json_cannot_hold_is_a_data_error_with_its_row(tmp_path: Path) -> None:
    rows = [{**chat_row(i), "when": datetime.date(2024, 1, 2)} for i in range(3)]
    write_parquet(tmp_path / "src" / "data" / "train-00000-of-00001.parquet", rows)
    req = PrepareRequest(LocalSource(path=str(tmp_path / "src")), {"train": "train"})
    with pytest.raises(DataError, match=r"train-00000-of-00001\.parquet:1: a value JSON cannot hold: .*date"):
        prepare(req, None, tmp_path / "cache")
