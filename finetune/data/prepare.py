"""prepare(): source -> checked, sampled, hashed JSONL per role, through the cache."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from itertools import islice
from pathlib import Path

from finetune.data import cache, chunks, readers, source
from finetune.data.chunks import MAX_BAD_ROWS, Part, Task
from finetune.data.errors import DataError, InvalidRowsError, SourceUnavailableError
from finetune.data.readers import SourceRow, iter_selected
from finetune.data.request import HubSource, PrepareRequest
from finetune.data.result import BadRow, Overlap, PrepareResult, ProbeResult, Progress, ProgressEvent, RoleResult
from finetune.data.sampling import carve, kept_count, select
from finetune.data.stats import OverlapIndex, SplitStats
from finetune.data.writer import AtomicJsonlWriter

MAX_OVERLAP_EXAMPLES = 5
_PROGRESS_EVERY = 10_000


def cache_key(request: PrepareRequest, cache_dir: Path | None = None, *, network: bool = True) -> str:
    """The cache key of `request`. Local files are hashed (remembered under cache_dir by size/mtime/inode);
    a hub source is its id, config and commit: a floating revision (None = `main`) is resolved from the local HF
    cache's ref, else (network=True) by asking the hub for the commit, without downloading data."""
    if isinstance(request.source, HubSource):
        identity = source.hub_identity(request.source, network=network)
    else:
        identity = source.resolve(request, _memo_dir(cache_dir)).identity
    return cache.compute_key(request, identity)


def probe(request: PrepareRequest, cache_dir: Path) -> ProbeResult:
    """Whether prepare() would be a cache hit, and the file hashes if so; never prepares, never uses the network."""
    try:
        key = cache_key(request, cache_dir, network=False)
    except SourceUnavailableError as exc:
        return ProbeResult(False, None, {}, f"source not available offline: {exc}")
    except DataError as exc:
        return ProbeResult(False, None, {}, str(exc))
    hit = cache.load(cache_dir, key)
    if hit is None:
        return ProbeResult(False, key, {}, "not prepared yet")
    return ProbeResult(True, key, hit.hashes(), stats=hit.role_stats())


def prepare(
    request: PrepareRequest, out_dir: Path | None, cache_dir: Path, *, progress: Progress | None = None
) -> PrepareResult:
    """Prepare `<role>.jsonl` files for `request` into out_dir (None: leave them in the cache entry).

    An unchanged request with an intact cache entry reads no data and returns `cache_hit=True`.
    Raises DataError (or a subclass) with a one-line, actionable message.
    """
    started = time.perf_counter()
    emit = progress or (lambda _event: None)
    out_dir, cache_dir = (Path(out_dir) if out_dir is not None else None), Path(cache_dir)
    emit(ProgressEvent("resolving", message=_describe(request)))
    resolved = source.resolve(request, _memo_dir(cache_dir))
    key = cache.compute_key(request, resolved.identity)
    hit = cache.load(cache_dir, key)
    if hit is None:
        with cache.building(cache_dir, key):
            hit = cache.load(cache_dir, key)  # another builder may have finished it meanwhile
            if hit is None:
                entry = cache.begin(cache_dir, key)
                roles, overlap = _build(request, resolved, entry, emit)
                result = PrepareResult(key, resolved.identity, roles, overlap)
                cache.commit(entry, result)
                result = cache.materialize(result, out_dir)
    if hit is not None:
        emit(ProgressEvent("cache_hit", message=key))
        result = cache.materialize(hit, out_dir)
    elapsed = time.perf_counter() - started
    emit(ProgressEvent("done", message=key))
    return PrepareResult(result.key, result.source, result.roles, result.overlap, result.cache_hit, elapsed)


class _RoleOutput:
    """One role's writer plus its running counts."""

    def __init__(self, role: str, split: str, entry: Path, source_rows: int, selected: int):
        self.role, self.split, self.source_rows, self.selected = role, split, source_rows, selected
        self.writer = AtomicJsonlWriter(entry / f"{role}.jsonl")
        self.stats = SplitStats()
        self.bad: list[BadRow] = []
        self.dropped = 0
        self.keys: list[tuple[tuple[str | None, int], str]] = []

    def add(self, part: Part, train_index: OverlapIndex) -> None:
        """Append one chunk's result (chunks arrive in source order)."""
        if part.spill is not None:
            self.writer.append_file(Path(part.spill), part.rows)
        else:
            self.writer.write_lines(part.data, part.rows)
        self.stats.merge(part.stats)
        self.dropped += part.dropped
        self.bad.extend(part.bad[: MAX_BAD_ROWS - len(self.bad)])
        if self.role == "train":
            for keys in part.keys:
                train_index.add(keys)
        else:
            self.keys.extend(part.keys)

    def result(self) -> RoleResult:
        return RoleResult(
            role=self.role,
            source_split=self.split,
            path=str(self.writer.path),
            sha256=self.writer.sha256,
            bytes=self.writer.bytes,
            source_rows=self.source_rows,
            selected_rows=self.selected,
            kept_rows=self.writer.rows,
            dropped_rows=self.dropped,
            stats=self.stats.to_dict(),
            bad_rows=tuple(self.bad),
        )


def _build(
    request: PrepareRequest, resolved: source.ResolvedSource, entry: Path, emit: Progress
) -> tuple[dict[str, RoleResult], tuple[Overlap, ...]]:
    train_index = OverlapIndex()
    outputs: dict[str, _RoleOutput] = {}
    for role in request.splits:  # train first: the overlap index is built from it
        split = request.splits[role]
        files = resolved.splits[split]
        total = sum(f.rows for f in files)
        indices = select(
            total,
            kept_count(total, request.percentage_for(role), request.max_rows_for(role)),
            request.sampling,
            request.seed,
            role,
        )
        targets = {role: indices}
        if role == "train" and request.validation_from_train:
            targets["train"], targets["validation"] = carve(indices, request.validation_from_train, request.seed)
        for r in targets:
            outputs[r] = _RoleOutput(r, split, entry, total, len(targets[r]))
        _run_pass(request, files, targets, {r: outputs[r] for r in targets}, train_index, emit)
    for out in outputs.values():
        if out.writer.rows == 0 and out.role == "train":
            raise DataError(f"no train rows left from source split {out.split!r}", hint="raise the percentage")
    roles = {r: outputs[r].result() for r in request.roles()}
    overlap = tuple(_overlap(out, train_index) for r, out in outputs.items() if r != "train")
    return roles, overlap


def _run_pass(
    request: PrepareRequest,
    files: list[source.SourceFile],
    targets: dict[str, list[int]],
    outputs: dict[str, _RoleOutput],
    train_index: OverlapIndex,
    emit: Progress,
) -> None:
    """One streaming pass over a source split, routing each selected row to its role's writer."""
    route = {i: role for role, idx in targets.items() for i in idx}
    wanted = sorted(route)
    first = next(iter(outputs))
    seen = 0
    spill = outputs[first].writer.path.parent / f".spill-{os.getpid()}-{threading.get_ident()}"  # workers' files
    try:
        emit(ProgressEvent("split_started", role=first, total=len(wanted), message=outputs[first].split))
        with closing(_chunk_results(files, wanted, route, spill)) as results:  # closing stops any workers at once
            for parts in results:
                for role, part in parts.items():
                    outputs[role].add(part, train_index)
                    before, seen = seen, seen + part.rows
                    if seen // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
                        emit(ProgressEvent("rows", role=first, rows=seen, total=len(wanted)))
        if request.invalid_row_policy == "error":
            _raise_if_bad(outputs.values())
    except BaseException:
        for out in outputs.values():
            out.writer.abort()
        for left in spill.parent.glob(f"{spill.name}.*.partial"):  # the workers have stopped: theirs, not taken
            left.unlink(missing_ok=True)
        raise
    for out in outputs.values():
        out.writer.close()
        emit(ProgressEvent("split_done", role=out.role, rows=out.writer.rows, total=out.selected))


def _chunk_results(
    files: list[source.SourceFile], wanted: list[int], route: dict[int, str], spill: Path
) -> Iterator[dict[str, Part]]:
    """Each chunk's parts, in source order: from worker processes for a large Parquet pass, else in here.

    Only Parquet goes to workers: they read their row groups themselves. A JSONL pass would have to ship its lines
    to them, which on 2 busy cores cost more than it saved (measured); it stays here.
    """
    workers = chunks.workers()
    if len(wanted) >= chunks.PARALLEL_MIN_ROWS and workers > 1 and all(f.format == "parquet" for f in files):
        yield from chunks.run_parallel(_tasks(files, wanted, route, spill), workers)
        return
    rows = ((row, route[index]) for index, row in _rows(files, wanted))
    while parts := chunks.process(islice(rows, chunks.LOCAL_CHUNK_ROWS)):
        yield parts


def _tasks(files: list[source.SourceFile], wanted: list[int], route: dict[int, str], spill: Path) -> Iterator[Task]:
    """The pass's tasks, numbered into their spill prefixes `<spill>.<n>` (unique within the pass)."""
    n = 0
    for f, offset, local in _per_file(files, wanted):
        for indices, roles in _parquet_tasks(f.path, local, [route[offset + i] for i in local]):
            yield Task(f.path, indices, roles, f"{spill}.{n}")
            n += 1


def _parquet_tasks(path: Path, local: list[int], roles: list[str]) -> Iterator[tuple[list[int], list[str]]]:
    """Whole row groups (what Parquet decodes at once) with about CHUNK_ROWS selected rows per task."""
    lo = pos = end = 0
    for group_rows in readers.parquet_group_rows(path):
        end += group_rows
        while pos < len(local) and local[pos] < end:
            pos += 1
        if pos - lo >= chunks.CHUNK_ROWS or (pos == len(local) and pos > lo):
            yield local[lo:pos], roles[lo:pos]
            lo = pos
        if pos == len(local):
            return


def _per_file(files: list[source.SourceFile], wanted: list[int]) -> Iterator[tuple[source.SourceFile, int, list[int]]]:
    """(file, split-wide index of its first row, its wanted rows as file-local indices) for files with any."""
    offset, pos = 0, 0
    for f in files:
        end = offset + f.rows
        lo = pos
        while pos < len(wanted) and wanted[pos] < end:
            pos += 1
        if pos > lo:
            yield f, offset, [i - offset for i in wanted[lo:pos]]
        if pos >= len(wanted):
            return
        offset = end


def _rows(files: list[source.SourceFile], wanted: list[int]) -> Iterator[tuple[int, SourceRow]]:
    """(split-wide index, row) for the wanted split-wide indices, file after file."""
    for f, offset, local in _per_file(files, wanted):
        for row in iter_selected(f.path, f.format, local):
            yield offset + row.index, row


def _raise_if_bad(outputs: Iterable[_RoleOutput]) -> None:
    bad = [o for o in outputs if o.dropped]
    if not bad:
        return
    first = bad[0].bad[0]
    counts = ", ".join(f"{o.dropped} of {o.selected} {o.role} rows" for o in bad)
    raise InvalidRowsError(
        f"invalid chat rows ({counts}); first: {'; '.join(first.reasons)}",
        path=first.path,
        line=first.line,
        hint="fix the data, or set the invalid-row policy to 'drop'",
        bad_rows=[b for o in bad for b in o.bad],
    )


def _overlap(out: _RoleOutput, train: OverlapIndex) -> Overlap:
    by_id = by_content = 0
    examples: list[str] = []
    for keys, where in out.keys:
        how = train.match(keys)
        if how is None:
            continue
        by_id += how == "prompt_id"
        by_content += how == "content"
        if len(examples) < MAX_OVERLAP_EXAMPLES:
            examples.append(f"{where} ({how})")
    return Overlap(out.role, by_id + by_content, by_id, by_content, tuple(examples))


def _memo_dir(cache_dir: Path | None) -> Path | None:
    return Path(cache_dir) / "files" if cache_dir is not None else None


def _describe(request: PrepareRequest) -> str:
    src = request.source
    if isinstance(src, HubSource):
        return f"hub {src.dataset}" + (f"@{src.revision}" if src.revision else "")
    return f"local {src.path or ', '.join(sorted(src.files or {}))}"
