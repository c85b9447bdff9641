"""Content hashes of source files, remembered by (size, mtime, inode) so an unchanged file is hashed once.

Like git's index: a file whose size, modification time and inode are unchanged is trusted to have the same content.
For JSONL the row count comes from the same pass, so a 5% head never reads the file twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from finetune.data.errors import DataError
from finetune.data.readers import count_rows

_CHUNK = 1 << 22
MEMO_VERSION = 1


@dataclass(frozen=True)
class FileInfo:
    path: str
    format: str
    size: int
    sha256: str
    rows: int


def file_info(path: Path, fmt: str, memo_dir: Path | None = None) -> FileInfo:
    """Hash and row count of one source file, from the memo when the file has not changed."""
    try:
        st = path.stat()
    except OSError as exc:
        missing = isinstance(exc, FileNotFoundError)
        raise DataError("source file not found" if missing else str(exc), path=str(path)) from exc
    stamp = [MEMO_VERSION, str(path.resolve()), fmt, st.st_size, st.st_mtime_ns, st.st_ino]
    memo = memo_dir / (hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:32] + ".json") if memo_dir else None
    if memo is not None and memo.is_file():
        try:
            saved = json.loads(memo.read_text())
            if saved["stamp"] == stamp:
                return FileInfo(str(path), fmt, st.st_size, saved["sha256"], saved["rows"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged memo is just recomputed
    sha, rows = _hash_and_count(path, fmt)
    if memo is not None:
        _write_atomic(memo, json.dumps({"stamp": stamp, "sha256": sha, "rows": rows}))
    return FileInfo(str(path), fmt, st.st_size, sha, rows)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _hash_and_count(path: Path, fmt: str) -> tuple[str, int]:
    if fmt != "jsonl":
        try:
            sha = sha256_file(path)
        except OSError as exc:
            raise DataError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
        return sha, count_rows(path, fmt)
    h = hashlib.sha256()
    rows = 0
    try:
        with open(path, "rb", buffering=_CHUNK) as f:
            for line in f:
                h.update(line)
                if not line.isspace():
                    rows += 1
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    return h.hexdigest(), rows


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and thread: specs of one folder are prepared concurrently in one process
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
