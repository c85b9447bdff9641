"""Reads that several specs run together would each repeat, done once while a folder of specs runs.

A folder of specs usually names the same registry model, the same component and the same workspace: planned one by
one, each spec asks the registry for the same label and the workspace for the same VM size list. Inside
`shared_reads()` (opened by `finetune validate|plan|apply|status DIR`), the first spec to ask reads and the others
wait for its answer, error included. Outside it every read goes to the target, so a single command never sees an
answer older than the command itself.

Two kinds of reads: facts that do not change while a folder runs (a registry label, the region's VM sizes) are
always shared; live state (quota usage, the workspace's jobs) only in read-only commands, because during a folder
apply one spec's writes must be seen by the specs that plan after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_scope: dict[Hashable, Future] | None = None
_share_live = False


@contextmanager
def shared_reads(*, live: bool = False) -> Iterator[None]:
    """While open, read_once() answers each key once for every thread of the process; `live` also shares reads of
    live state (only for commands that write nothing)."""
    global _scope, _share_live
    with _lock:
        outer = _scope, _share_live
        _scope, _share_live = ({} if _scope is None else _scope), live and (_scope is None or _share_live)
    try:
        yield
    finally:
        with _lock:
            _scope, _share_live = outer


def shares_live() -> bool:
    """Whether reads of live state are shared now (a read-only command over a folder of specs is running)."""
    with _lock:
        return _scope is not None and _share_live


def read_once(key: Hashable, read: Callable[[], T], *, live: bool = False) -> T:
    """read(), or the answer another thread already got (or is getting) for the same key in the open scope.
    `live`: the read is of state a write could change (shared only when the scope allows it)."""
    with _lock:
        scope = _scope
        if scope is None or (live and not _share_live):
            found, owner = None, False
        elif key in scope:
            found, owner = scope[key], False
        else:
            found, owner = scope.setdefault(key, Future()), True
    if found is None:
        return read()
    if owner:
        try:
            found.set_result(read())
        except BaseException as exc:  # the waiting specs get the same error the reader got
            found.set_exception(exc)
    return found.result()
