"""Resolve a request's source to concrete files per source split, with each file's format, rows and identity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.data import hub
from finetune.data.errors import DataError, SourceUnavailableError
from finetune.data.hashing import FileInfo, file_info
from finetune.data.layout import format_of, splits_in
from finetune.data.readers import count_rows
from finetune.data.request import HubSource, LocalSource, PrepareRequest


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str
    rows: int


@dataclass(frozen=True)
class ResolvedSource:
    """`identity` is what the cache key uses: file content hashes, or the hub id, config and commit."""

    identity: dict[str, Any]
    splits: dict[str, list[SourceFile]]


def needed_splits(request: PrepareRequest) -> list[str]:
    return sorted(set(request.splits.values()))


def resolve(request: PrepareRequest, memo_dir: Path | None, *, network: bool = True,
            identify: bool = True) -> ResolvedSource:
    """Files of every source split the request uses. With network=False a hub source must be cached.
    identify=False skips hashing local files (the identity is then empty): for reading rows without caching."""
    src = request.source
    if isinstance(src, HubSource):
        return _resolve_hub(src, needed_splits(request), network=network)
    return _resolve_local(src, needed_splits(request), memo_dir, identify)


def hub_identity(src: HubSource, *, network: bool) -> dict[str, Any]:
    """The hub identity: from the cached ref, else the hub's answer (network) or SourceUnavailableError."""
    commit = hub.local_commit(src)
    if commit is None:
        if not network:
            raise SourceUnavailableError(f"hub dataset {src.dataset}: revision not in the local cache")
        commit = hub.remote_commit(src)
    return {"kind": "hub", "dataset": src.dataset, "config": src.config, "revision": src.revision, "commit": commit}


def _resolve_hub(src: HubSource, needed: list[str], *, network: bool) -> ResolvedSource:
    if network:
        files = hub.resolve(src, needed)
    else:
        files = hub.local_files(src, needed)
        if files is None:
            raise SourceUnavailableError(f"hub dataset {src.dataset} is not in the local cache")
    splits = {}
    for split, paths in files.splits.items():
        splits[split] = [SourceFile(p, fmt := format_of(p), count_rows(p, fmt)) for p in paths]
    identity = {"kind": "hub", "dataset": src.dataset, "config": src.config, "revision": src.revision}
    return ResolvedSource({**identity, "commit": files.commit}, splits)


def _resolve_local(src: LocalSource, needed: list[str], memo_dir: Path | None, identify: bool = True
                   ) -> ResolvedSource:
    if src.files is not None:
        available = {split: [Path(p) for p in paths] for split, paths in src.files.items()}
        where = "the source's files mapping"
    else:
        root = Path(src.path or ".")
        available = splits_in(root, src.format)
        where = str(root)
    for split in needed:
        if split not in available:
            raise DataError(
                f"source split {split!r} not found in {where}",
                hint=f"available: {', '.join(sorted(available)) or 'none'}",
            )
    files = [(split, path, format_of(path, src.format)) for split in needed for path in available[split]]
    if not identify:
        return ResolvedSource({}, {split: [SourceFile(path, fmt, _rows(path, fmt)) for s, path, fmt in files
                                           if s == split] for split in needed})
    infos = _file_infos([(path, fmt) for _, path, fmt in files], memo_dir)
    splits: dict[str, list[SourceFile]] = {split: [] for split in needed}
    identity: dict[str, list[list[str]]] = {split: [] for split in needed}
    for (split, path, fmt), info in zip(files, infos, strict=True):
        splits[split].append(SourceFile(path, fmt, info.rows))
        identity[split].append([fmt, info.sha256])
    return ResolvedSource({"kind": "local", "splits": identity}, splits)


def _rows(path: Path, fmt: str) -> int:
    if not path.exists():
        raise DataError("source file not found", path=str(path))  # as file_info says it
    return count_rows(path, fmt)


def _file_infos(files: list[tuple[Path, str]], memo_dir: Path | None) -> list[FileInfo]:
    """file_info() of each file; several files are hashed on two threads (hashlib and reads release the GIL)."""
    if len(files) < 2:
        return [file_info(path, fmt, memo_dir) for path, fmt in files]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda f: file_info(f[0], f[1], memo_dir), files))
