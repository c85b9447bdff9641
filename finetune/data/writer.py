"""Deterministic JSONL output: fixed serialization, sha256 while writing, atomic rename on success."""

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


class AtomicJsonlWriter:
    """Writes `<path>` through a temp file in the same folder; it appears only on a clean `close()`.

    An exception inside the `with` block (or a kill) leaves no file at `path` that anyone could trust.
    """

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        self._f = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._hash = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self.sha256 = ""

    def write(self, row: Any) -> None:
        self.write_lines((dumps_row(row) + "\n").encode("utf-8", "surrogatepass"), 1)

    def write_lines(self, data: bytes, rows: int) -> None:
        """Append `rows` lines already encoded as dumps_row() + newline, in UTF-8 (surrogatepass)."""
        self._hash.update(data)
        self._f.write(data)
        self.rows += rows
        self.bytes += len(data)

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
