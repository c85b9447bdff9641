"""Deterministic JSONL output: fixed serialization, sha256 while writing, atomic rename on success.

The serialization is dumps_row()'s (the json module's). encode_row() gives the same bytes ~8x faster through orjson
wherever orjson's bytes are the same: rows of str, int, bool, None, dicts, lists and tuples (tests hold the two to
agreeing); rows with anything else (a float: orjson writes 1e-5 where json writes 1e-05, and NaN as null) take json.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

# One shared encoder: json.dumps with options builds a new one per call. Rows read from files cannot be circular,
# so the cycle check (~10% of the encoding time) is skipped; the bytes are the same.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def dumps_row(row: Any) -> str:
    """One row as one line: source key order, no ASCII escaping, no spaces. Same row -> same bytes."""
    return _ENCODE(row)


def encode_row(row: Any, plain: bool = False) -> bytes:
    """dumps_row(row) in UTF-8 (surrogatepass), without the newline. `plain`: the caller knows the row holds only
    str, int, bool, None, dicts, lists and tuples (a Parquet schema without floats, say), so it is not walked."""
    import orjson  # lazy: it imports uuid, dataclasses and inspect

    if plain or json_plain(row):
        try:
            # Passthrough: datetimes, dataclasses and subclasses go to the (absent) default and so fail, as in json.
            passthrough = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            return orjson.dumps(row, option=passthrough | orjson.OPT_PASSTHROUGH_SUBCLASS)
        except TypeError:  # orjson.JSONEncodeError: a non-str key, an int past 64 bits, a lone surrogate, deep nesting
            pass
    return _ENCODE(row).encode("utf-8", "surrogatepass")


def json_plain(value: Any) -> bool:
    """Whether `value` holds only str, int, bool, None, and dicts, lists and tuples of them (exact types).

    These are the values orjson writes as dumps_row() does, and that orjson reads as json does (it reads an int past
    64 bits as a float, so a float in what it read may not be one in the text).
    """
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        if t is str or t is int or t is bool or v is None:
            continue
        if t is dict:
            push(v.values())  # keys: orjson refuses non-str ones, and then json is used
        elif t is list or t is tuple:
            push(v)
        else:
            return False
    return True


class AtomicJsonlWriter:
    """Writes `<path>` through a temp file in the same folder; it appears only on a clean `close()`.

    An exception inside the `with` block (or a kill) leaves no file at `path` that anyone could trust.
    """

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        self._f = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._buffer = bytearray()  # append_file's, made once: fresh memory is slow to touch
        self._hash = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self.sha256 = ""

    def write(self, row: Any) -> None:
        self.write_lines(encode_row(row) + b"\n", 1)

    def write_lines(self, data: bytes, rows: int) -> None:
        """Append `rows` lines already encoded as dumps_row() + newline, in UTF-8 (surrogatepass)."""
        self._hash.update(data)
        self._f.write(data)
        self.rows += rows
        self.bytes += len(data)

    def append_file(self, path: Path, rows: int) -> None:
        """Append the file at `path` (`rows` lines as write_lines() takes them), then remove it."""
        if not self._buffer:
            self._buffer = bytearray(1 << 20)
        buffer, view = self._buffer, memoryview(self._buffer)
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                self._hash.update(view[:n])
                self._f.write(view[:n])
                self.bytes += n
        self.rows += rows
        path.unlink()

    def close(self) -> None:
        # No fsync: after a power loss a renamed file may be short, and the cache notices by its recorded size.
        self._f.close()
        os.replace(self.tmp, self.path)
        self.sha256 = self._hash.hexdigest()

    def abort(self) -> None:
        self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicJsonlWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        if exc_type is None:
            self.close()
        else:
            self.abort()
