"""Hugging Face Hub sources: the data files of a dataset at one commit, from the local HF cache or the hub.

The hub's own data files (Parquet shards for most datasets, `data/<split>-00000-of-0000N.parquet`) are read with the
same streaming readers as local files, so taking 5% downloads and reads only what it needs. A dataset published only
as a loading script can be used through its auto-converted Parquet branch: `revision: refs/convert/parquet`.

Failing fast matters more than retrying: with no network `datasets.load_dataset` retries for ~20 s. Here the local
cache is tried first, offline mode (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) never touches the network, and otherwise a
1-second TCP connect decides whether the hub is reachable at all.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from finetune.data.errors import DataError, SourceUnavailableError
from finetune.data.layout import group_files, splits_in
from finetune.data.request import HubSource

CONNECT_TIMEOUT_S = 1.0
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubFiles:
    commit: str
    splits: dict[str, list[Path]]


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_cache() -> Path:
    """The huggingface_hub cache folder, read from the environment each time (tests change it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface" / "hub"


def repo_dir(source: HubSource) -> Path:
    return hub_cache() / ("datasets--" + source.dataset.replace("/", "--"))


def local_commit(source: HubSource) -> str | None:
    """The commit the request means, without network: a pinned commit, or the cached ref of a branch/tag."""
    revision = source.revision or "main"
    if _COMMIT.match(revision):
        return revision
    ref = repo_dir(source) / "refs" / revision
    try:
        commit = ref.read_text().strip()
    except OSError:
        return None
    return commit if _COMMIT.match(commit) else None


def local_files(source: HubSource, needed: list[str]) -> HubFiles | None:
    """The needed splits' files from the local HF cache, or None when any is missing."""
    commit = local_commit(source)
    if commit is None:
        return None
    snapshot = repo_dir(source) / "snapshots" / commit
    if not snapshot.is_dir():
        return None
    subdir = source.config if source.config and (snapshot / source.config).is_dir() else None
    found = splits_in(snapshot, subdir=subdir)
    if not all(s in found for s in needed):
        return None
    return HubFiles(commit, {s: found[s] for s in needed})


def resolve(source: HubSource, needed: list[str]) -> HubFiles:
    """The needed splits' files, from the cache or downloaded; SourceUnavailableError fast when neither works."""
    cached = local_files(source, needed)
    if cached is not None:
        return cached
    where = f"{source.dataset}" + (f"@{source.revision}" if source.revision else "")
    fix = f"use a local path as the source, or fetch it once with network into the HF cache ({hub_cache()})"
    if offline():
        raise SourceUnavailableError(f"hub dataset {where} is not in the local cache and offline mode is on", hint=fix)
    _check_reachable(where, fix)
    return _download(source, needed)


def remote_commit(source: HubSource) -> str:
    """The commit a branch or tag points at on the hub now (no download); fails fast like resolve()."""
    commit = local_commit(source)
    if commit is not None and _COMMIT.match(source.revision or ""):
        return commit
    where = f"{source.dataset}" + (f"@{source.revision}" if source.revision else "")
    fix = "pin a commit as the revision, or use a local path as the source"
    if offline():
        raise SourceUnavailableError(f"cannot resolve hub dataset {where} to a commit: offline mode is on", hint=fix)
    _check_reachable(where, fix)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return HfApi().dataset_info(source.dataset, revision=source.revision, timeout=10).sha or ""
    except (HfHubHTTPError, OSError) as exc:
        raise SourceUnavailableError(f"cannot resolve hub dataset {where} to a commit: {exc}", hint=fix) from exc


def _check_reachable(where: str, fix: str) -> None:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise SourceUnavailableError(
            f"hub dataset {where} is not in the local cache and {url.hostname} cannot be reached ({exc})", hint=fix
        ) from exc


def _download(source: HubSource, needed: list[str]) -> HubFiles:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().dataset_info(source.dataset, revision=source.revision, timeout=10)
        commit = info.sha or ""
        names = [s.rfilename for s in info.siblings or []]
        prefix = f"{source.config}/" if source.config and any(n.startswith(f"{source.config}/") for n in names) else ""
        groups = group_files([n[len(prefix) :] for n in names if n.startswith(prefix)])
        missing = [s for s in needed if s not in groups]
        if missing:
            raise DataError(
                f"hub dataset {source.dataset} has no data files for split(s) {', '.join(missing)}; "
                f"found: {', '.join(sorted(groups)) or 'none'}",
                hint="check the split names, or use revision 'refs/convert/parquet' for script-based datasets",
            )
        splits = {
            s: [
                Path(hf_hub_download(source.dataset, prefix + f, repo_type="dataset", revision=commit))
                for f in groups[s]
            ]
            for s in needed
        }
    except RevisionNotFoundError as exc:
        raise DataError(f"hub dataset {source.dataset} has no revision {source.revision!r}") from exc
    except RepositoryNotFoundError as exc:
        raise DataError(
            f"hub dataset {source.dataset} not found or not accessible", hint="check the id; log in for gated ones"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise SourceUnavailableError(f"downloading hub dataset {source.dataset} failed: {exc}") from exc
    # Record the branch -> commit ref like huggingface_hub does, so the next run resolves it offline.
    ref = repo_dir(source) / "refs" / (source.revision or "main")
    if not _COMMIT.match(source.revision or "main"):
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return HubFiles(commit, splits)
