"""The spec's `data:` section as a data-layer PrepareRequest, and where prepared data lives for a spec."""

from __future__ import annotations

from pathlib import Path

from finetune.data import HubSource, LocalSource, PrepareRequest, PrepareResult, ProbeResult, ProgressEvent
from finetune.errors import FinetuneError
from finetune.spec.load import LoadedSpec
from finetune.spec.models import HubSource as SpecHubSource
from finetune.spec.models import Spec
from finetune.state import check_state_folder


def state_dir(loaded: LoadedSpec) -> Path:
    """The project's state folder (data cache, journal, lock, local runs), relative to the spec file.

    A FinetuneError naming it when it is a file, or cannot be read, written or created.
    """
    return check_state_folder((loaded.base_dir / loaded.spec.target.local.state_dir).resolve())


def data_cache_dir(loaded: LoadedSpec) -> Path:
    return state_dir(loaded) / "data-cache"


def prepare_request(loaded: LoadedSpec) -> PrepareRequest:
    return request_for(loaded.spec, loaded.base_dir)


def request_for(spec: Spec, base_dir: Path) -> PrepareRequest:
    """The spec's `data:` section as a request; local paths are relative to `base_dir` (the spec's folder)."""
    data = spec.data
    if isinstance(data.source, SpecHubSource):
        source: HubSource | LocalSource = HubSource(data.source.hf, data.source.revision, data.source.config)
    elif data.source.path is not None:
        source = LocalSource(path=str((base_dir / data.source.path).resolve()), format=data.source.format)
    else:
        files = {split: tuple(str((base_dir / f).resolve()) for f in ([paths] if isinstance(paths, str)
                                                                               else paths))
                 for split, paths in (data.source.files or {}).items()}
        source = LocalSource(files=files, format=data.source.format)
    splits = {role: split for role, split in data.splits.model_dump().items() if split}
    if isinstance(data.split_percentage, float | int):
        percentage: float | dict[str, float] = float(data.split_percentage)
    else:
        percentage = {role: pct for role, pct in data.split_percentage.model_dump().items() if pct is not None}
    return PrepareRequest(source=source, splits=splits, percentage=percentage, sampling=data.sampling.method,
                          seed=data.sampling.seed, max_rows=data.max_rows,
                          validation_from_train=data.validation_from_train, invalid_row_policy=data.invalid_rows)


def _request(loaded: LoadedSpec) -> PrepareRequest:
    from finetune.data import DataError

    try:
        return prepare_request(loaded)
    except DataError as exc:  # the data layer's own errors become the product's, with location and fix
        raise FinetuneError(str(exc)) from None


def probe_data(loaded: LoadedSpec) -> ProbeResult:
    from finetune.data import probe

    return probe(_request(loaded), data_cache_dir(loaded))


def prepare_data(loaded: LoadedSpec, progress=None) -> PrepareResult:
    """Prepare (or reuse from the cache) the spec's data; files stay in the cache entry."""
    from finetune.data import DataError, prepare

    def forward(event: ProgressEvent) -> None:
        if progress is not None:
            progress(event)

    try:
        return prepare(_request(loaded), None, data_cache_dir(loaded), progress=forward)
    except DataError as exc:
        raise FinetuneError(str(exc)) from None


def cached_data(loaded: LoadedSpec) -> PrepareResult | None:
    """The prepared data from the cache, without preparing, reading the source's rows or using the network; None
    when it is not there (or the source is gone, so its cache entry cannot be told)."""
    from finetune.data.cache import load as load_cached

    try:
        probe = probe_data(loaded)
    except FinetuneError:
        return None
    if not probe.cached or probe.key is None:
        return None
    return load_cached(data_cache_dir(loaded), probe.key)
