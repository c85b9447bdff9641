"""Streaming readers: count the rows of one file, then yield only the selected ones.

Selected indices are sorted, so every reader stops as soon as it passes the last one: taking the first 5% reads about
5% of a JSONL file or of a Parquet file's row groups, and never holds more than one batch in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.data.errors import DataError
from finetune.data.writer import json_plain

_BATCH = 2048


@dataclass(frozen=True)
class SourceRow:
    """One selected row: its index within its file, where it is (`path`, 1-based line or row) and its data.

    `plain`: the reader knows `data` holds only str, int, bool, None, dicts and lists (writer.json_plain), so the
    writer need not look again.
    """

    index: int
    path: str
    line: int
    data: Any
    plain: bool = False


def count_rows(path: Path, fmt: str) -> int:
    """Rows in one file, read as cheaply as the format allows (Parquet: metadata only)."""
    try:
        if fmt == "jsonl":
            return _count_jsonl(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "csv":
            return sum(batch.num_rows for batch in _csv_batches(path))
        if fmt == "json":
            return len(_json_array(path)) if _is_json_array(path) else _count_jsonl(path)
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise DataError(f"corrupt or unreadable {fmt} file: {_short(exc)}", path=str(path)) from exc
    raise DataError(f"unknown format {fmt!r}", path=str(path))


def iter_selected(path: Path, fmt: str, selected: Sequence[int]) -> Iterator[SourceRow]:
    """Yield the rows of `path` whose 0-based indices are in `selected` (sorted, unique), in order."""
    if not selected:
        return
    try:
        if fmt == "jsonl" or (fmt == "json" and not _is_json_array(path)):
            yield from _jsonl_selected(path, selected)
        elif fmt == "json":
            rows = _json_array(path)
            for i in selected:
                yield SourceRow(i, str(path), i + 1, rows[i])
        elif fmt == "parquet":
            yield from _parquet_selected(path, selected)
        elif fmt == "csv":
            for row in _batches_selected(path, _csv_batches(path), selected):
                # CSV has no nesting: a JSON-looking cell (the messages list) is decoded; line = data row + header.
                data = {k: _maybe_json(v) for k, v in row.data.items()}
                yield SourceRow(row.index, row.path, row.index + 2, data)
        else:
            raise DataError(f"unknown format {fmt!r}", path=str(path))
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    except Exception as exc:
        raise DataError(f"corrupt or unreadable {fmt} file: {_short(exc)}", path=str(path)) from exc


def _count_jsonl(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.isspace():
                n += 1
    return n


def loads_line(line: bytes) -> tuple[Any, bool]:
    """(the value of one JSON line as json.loads reads it, whether it is json_plain).

    orjson reads it (~2.5x faster) when what it read is plain, for then json reads the same; otherwise json reads
    it again: a float (orjson reads an int past 64 bits as one), NaN, a lone surrogate. json's errors are raised.
    """
    import orjson  # lazy: it imports uuid, dataclasses and inspect

    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line), False
    if json_plain(data):
        return data, True
    return json.loads(line), False


def _jsonl_selected(path: Path, selected: Sequence[int]) -> Iterator[SourceRow]:
    want = iter(selected)
    target = next(want)
    index = -1
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if line.isspace():
                continue
            index += 1
            if index != target:
                continue
            try:
                data, plain = loads_line(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(
                    f"not valid JSON: {_short(exc)}", path=str(path), line=lineno, hint="fix or remove that line"
                ) from exc
            yield SourceRow(index, str(path), lineno, data, plain)
            target = next(want, None)
            if target is None:
                return


def parquet_group_rows(path: Path) -> list[int]:
    """Rows in each row group of a Parquet file (metadata only)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def _parquet_selected(path: Path, selected: Sequence[int]) -> Iterator[SourceRow]:
    """Read only the row groups holding selected rows (the metadata says where each starts), one at a time."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    plain = all(_arrow_plain(f.type) for f in pf.schema_arrow)
    pos, start = 0, 0
    for group in range(pf.metadata.num_row_groups):
        end = start + pf.metadata.row_group(group).num_rows
        lo = pos
        while pos < len(selected) and selected[pos] < end:
            pos += 1
        if pos > lo:
            local = [i - start for i in selected[lo:pos]]
            batches = pf.iter_batches(batch_size=_BATCH, row_groups=[group])
            yield from _batches_selected(path, batches, local, start, plain)
        if pos >= len(selected):
            return
        start = end


def _arrow_plain(t: Any) -> bool:
    """Whether to_pylist() turns values of Arrow type `t` into json_plain values only (no floats, dates, bytes...)."""
    import pyarrow.types as pat

    if pat.is_string(t) or pat.is_large_string(t) or pat.is_integer(t) or pat.is_boolean(t) or pat.is_null(t):
        return True  # an extension type (uuid, say) is none of these: its id is "extension"
    if pat.is_list(t) or pat.is_large_list(t) or pat.is_fixed_size_list(t):
        return _arrow_plain(t.value_type)
    if pat.is_struct(t):
        return all(_arrow_plain(t.field(i).type) for i in range(t.num_fields))
    if pat.is_dictionary(t):
        return _arrow_plain(t.value_type)
    return False


def _batches_selected(
    path: Path, batches: Any, selected: Sequence[int], first: int = 0, plain: bool = False
) -> Iterator[SourceRow]:
    """Rows at `selected` (indices into the batches), numbered from `first` (where the batches start in the file).
    `plain`: the batches' schema holds only types that become json_plain values."""
    pos = 0  # index into `selected`
    start = 0  # index of the batch's first row in the batches
    for batch in batches:
        end = start + batch.num_rows
        take: list[int] = []
        while pos < len(selected) and selected[pos] < end:
            take.append(selected[pos] - start)
            pos += 1
        if take:
            # Only selected rows become Python objects; column-wise conversion is ~2x faster than to_pylist().
            if take[-1] - take[0] + 1 == len(take):  # a contiguous run (always, for "head"): zero-copy
                part = batch.slice(take[0], len(take))
            else:  # importing pyarrow.compute for take() costs ~0.4 s, so only random sampling pays it
                import pyarrow as pa

                part = batch.take(pa.array(take))
            names = part.schema.names
            columns = [column.to_pylist() for column in part.columns]
            for offset, values in zip(take, zip(*columns, strict=True), strict=True):
                index = first + start + offset
                yield SourceRow(index, str(path), index + 1, dict(zip(names, values, strict=True)), plain)
        if pos >= len(selected):
            return
        start = end


def _csv_batches(path: Path) -> Any:
    import pyarrow.csv as pacsv

    # Strings stay strings: no type inference turning ids into numbers.
    convert = pacsv.ConvertOptions(strings_can_be_null=False)
    return pacsv.open_csv(path, convert_options=convert, read_options=pacsv.ReadOptions(block_size=1 << 22))


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        while chunk := f.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped.startswith(b"[")
    return False


def _json_array(path: Path) -> list:
    # A JSON array cannot be streamed without a streaming parser; it is read whole (use JSONL for big data).
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=str(path), line=exc.lineno) from exc
    if not isinstance(rows, list):
        raise DataError("a .json source must be a JSON array of rows or JSON Lines", path=str(path))
    return rows


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
