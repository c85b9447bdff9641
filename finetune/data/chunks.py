"""The per-row work of a pass (check, stats, overlap keys, serialize), done a chunk of rows at a time.

A chunk's result is one `Part` per role: the encoded lines plus counts, so the parent only hashes and writes bytes.
Large Parquet passes run chunks in worker processes (the per-row work is pure Python, so threads would not help);
results come back in chunk order, so the output bytes are the same as with one process. A worker writes its lines to
a spill file beside the output rather than sending them back: pickling, piping and unpickling ~6 MB per chunk cost
the parent and workers more than the encoding did (measured).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.data.checks import row_problems, valid_turns
from finetune.data.errors import DataError
from finetune.data.readers import SourceRow, iter_selected
from finetune.data.result import BadRow
from finetune.data.stats import SplitStats, overlap_keys
from finetune.data.writer import encode_row

MAX_BAD_ROWS = 10  # bad rows reported per role; all of them are counted
CHUNK_ROWS = 1000  # rows per worker task: enough to amortize sending it, few enough to keep memory flat
LOCAL_CHUNK_ROWS = 128  # rows per chunk in this process: nothing to amortize, so keep the held lines small
PARALLEL_MIN_ROWS = 20_000  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 4


@dataclass
class Part:
    """What one chunk adds to one role's output. `keys` holds overlap keys; outside train, with "path:line"."""

    data: bytes = b""
    spill: str | None = None  # or: the lines are in this file (a worker's), for the parent to append and remove
    rows: int = 0
    dropped: int = 0
    stats: SplitStats = field(default_factory=SplitStats)
    bad: list[BadRow] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Task:
    """A chunk a worker does alone: selected rows of a Parquet file, in whole row groups it reads itself."""

    path: Path
    indices: list[int]  # file-local row indices, sorted
    roles: list[str]  # the role of each of those rows
    spill: str  # path prefix of the spill files: `<spill>.<role>.<worker pid>.partial`


def process(rows: Iterable[tuple[SourceRow, str]], spill: str | None = None) -> dict[str, Part]:
    """Check, count and serialize (row, role) pairs; consumed as a stream, so only the output lines are held.
    With `spill`, each role's lines go to a spill file (see Task) instead of Part.data."""
    parts: dict[str, Part] = {}
    lines: dict[str, list[bytes]] = {}
    for row, role in rows:
        part = parts.get(role)
        if part is None:
            part, lines[role] = parts.setdefault(role, Part()), []
        data = row.data
        valid = valid_turns(data)
        if valid is None:
            part.dropped += 1
            if len(part.bad) < MAX_BAD_ROWS:
                part.bad.append(BadRow(role, row.path, row.line, tuple(row_problems(data))))
            continue
        turns, chars = valid
        try:
            lines[role].append(encode_row(data, row.plain))
        except TypeError as exc:  # a Parquet date or binary column, say
            raise DataError(
                f"a value JSON cannot hold: {exc}", path=row.path, line=row.line, hint="convert or drop that column"
            ) from None
        part.stats.add_counts(len(turns), chars)
        keys = overlap_keys(data, turns)
        part.keys.append(keys if role == "train" else (keys, f"{row.path}:{row.line}"))
    for role, part in parts.items():
        part.rows = len(lines[role])
        if part.rows and spill is not None:
            part.spill = f"{spill}.{role}.{os.getpid()}.partial"
            with open(part.spill, "wb", buffering=1 << 20) as f:  # no joined copy: line by line through the buffer
                for line in lines[role]:
                    f.write(line)
                    f.write(b"\n")
        elif part.rows:
            lines[role].append(b"")
            part.data = b"\n".join(lines[role])
    return parts


def run_task(task: Task) -> dict[str, Part]:
    rows = iter_selected(task.path, "parquet", task.indices)
    return process(zip(rows, task.roles, strict=False), task.spill)  # strict=False: a file shortened since counted


def workers() -> int:
    """Worker processes for a large pass; below 2 it is not worth it. Linux only, as workers are forked: they must
    share the parent's str hash seed (overlap keys use hash()), and fork is unsafe on macOS."""
    if not sys.platform.startswith("linux"):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


def run_parallel(tasks: Iterator[Task], n: int) -> Iterator[dict[str, Part]]:
    """run_task over `tasks` in n worker processes, yielding results in task order.

    Only 2n tasks are in flight, so memory stays flat; closing the iterator (an error, an interrupt) cancels the
    queued tasks and waits for the running ones, so no worker outlives the pass.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker)
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(run_task, task))
            if len(pending) >= 2 * n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker() -> None:
    import gc
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it (aborting the writers), workers just stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The work makes no reference cycles, so the cyclic collector would only rescan rows (~10% of the time).
    gc.disable()
