"""The preparation cache: key = hash of everything that determines the output; an entry is trusted only through
its manifest, which is written last and records each file's sha256, size and mtime."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from finetune.data.request import PrepareRequest
from finetune.data.result import PrepareResult

FORMAT_VERSION = 1
"""Bump when the output bytes for the same inputs change (serialization, checks, sampling): old entries go stale."""

MANIFEST = "manifest.json"


def key_material(request: PrepareRequest, identity: dict[str, Any]) -> dict[str, Any]:
    roles = request.roles()
    return {
        "format_version": FORMAT_VERSION,
        "source": identity,
        "splits": dict(request.splits),
        "percentage": {r: request.percentage_for(r) for r in roles},
        "max_rows": {r: request.max_rows_for(r) for r in roles},
        "sampling": request.sampling,
        "seed": request.seed,
        "validation_from_train": request.validation_from_train,
        "invalid_row_policy": request.invalid_row_policy,
    }


def compute_key(request: PrepareRequest, identity: dict[str, Any]) -> str:
    blob = json.dumps(key_material(request, identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_dir(cache_dir: Path, key: str) -> Path:
    return cache_dir / "prepared" / key


def load(cache_dir: Path, key: str) -> PrepareResult | None:
    """The cached result for `key`, or None unless the manifest and every file it lists are intact."""
    entry = entry_dir(cache_dir, key)
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        if manifest.get("format_version") != FORMAT_VERSION or manifest["result"]["key"] != key:
            return None
        for name, (size, mtime_ns) in manifest["files"].items():
            st = (entry / name).stat()
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                return None  # edited in place (for instance through a hard link in out_dir): not trusted
        result = PrepareResult.from_dict(manifest["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    roles = {role: _with_path(r, str(entry / Path(r.path).name)) for role, r in result.roles.items()}
    return PrepareResult(result.key, result.source, roles, result.overlap, cache_hit=True)


@contextlib.contextmanager
def building(cache_dir: Path, key: str) -> Iterator[None]:
    """One builder per entry at a time, across threads and processes (specs of one folder share the cache): an OS
    file lock on `locks/<key>`, released by the kernel if the builder dies."""
    import fcntl

    (cache_dir / "locks").mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "locks" / key, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def begin(cache_dir: Path, key: str) -> Path:
    """The entry folder, with any old manifest removed first so a half-rebuilt entry is never trusted."""
    entry = entry_dir(cache_dir, key)
    entry.mkdir(parents=True, exist_ok=True)
    (entry / MANIFEST).unlink(missing_ok=True)
    for partial in entry.glob(".*.partial"):  # left by a killed run: `.<name>.<pid>.partial`
        pid = partial.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)
    return entry


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def commit(entry: Path, result: PrepareResult) -> None:
    """Write the manifest, last, atomically."""
    files = {}
    for r in result.roles.values():
        st = (entry / Path(r.path).name).stat()
        files[Path(r.path).name] = [st.st_size, st.st_mtime_ns]
    data = {"format_version": FORMAT_VERSION, "files": files, "result": {**result.to_dict(), "cache_hit": False}}
    tmp = entry / f".{MANIFEST}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, entry / MANIFEST)


def materialize(result: PrepareResult, out_dir: Path | None) -> PrepareResult:
    """Expose the entry's files as `out_dir/<role>.jsonl` (hard links, else copies), atomically per file."""
    if out_dir is None:
        return result
    out_dir.mkdir(parents=True, exist_ok=True)
    roles = {}
    for role, r in result.roles.items():
        src, dst = Path(r.path), out_dir / Path(r.path).name
        if not (dst.exists() and os.path.samefile(src, dst)):
            tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{threading.get_ident()}.link")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        roles[role] = _with_path(r, str(dst))
    return PrepareResult(result.key, result.source, roles, result.overlap, result.cache_hit, result.elapsed_s)


def _with_path(r: Any, path: str) -> Any:
    from dataclasses import replace

    return replace(r, path=path)
