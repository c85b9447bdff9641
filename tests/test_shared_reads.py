"""shared_reads(): specs run together read a shared fact once, an error included; live state only when allowed."""

from __future__ import annotations

import threading

import pytest

from finetune.backends.shared_reads import read_once, shared_reads, shares_live


def counting():
    calls = []

    def read():
        calls.append(threading.get_ident())
        return len(calls)

    return calls, read


def test_outside_a_scope_every_read_goes_to_the_target():
    calls, read = counting()
    assert [read_once("k", read), read_once("k", read)] == [1, 2]


def test_inside_a_scope_concurrent_readers_share_one_read():
    calls, _ = counting()
    gate = threading.Event()

    def slow():
        gate.wait(5)
        calls.append(1)
        return "answer"

    results = []
    with shared_reads():
        threads = [threading.Thread(target=lambda: results.append(read_once("k", slow))) for _ in range(8)]
        for t in threads:
            t.start()
        gate.set()
        for t in threads:
            t.join()
    assert results == ["answer"] * 8 and len(calls) == 1
    assert read_once("k", lambda: "fresh") == "fresh"  # the scope closed: nothing kept


def test_an_error_is_shared_too_and_not_kept_after_the_scope():
    attempts = []

    def failing():
        attempts.append(1)
        raise LookupError("model not found")

    with shared_reads():
        for _ in range(3):
            with pytest.raises(LookupError):
                read_once("m", failing)
    assert len(attempts) == 1
    assert read_once("m", lambda: "now there") == "now there"


def test_live_state_is_shared_only_when_the_scope_allows_it():
    calls, read = counting()
    assert not shares_live()
    with shared_reads():  # e.g. a folder apply: one spec's writes must be seen by the next one's reads
        assert not shares_live()
        assert [read_once("jobs", read, live=True), read_once("jobs", read, live=True)] == [1, 2]
        assert read_once("sizes", read) == read_once("sizes", read) == 3
    with shared_reads(live=True):
        assert shares_live()
        assert read_once("jobs", read, live=True) == read_once("jobs", read, live=True) == 4
    assert not shares_live()


def test_a_nested_scope_keeps_the_outer_one_and_cannot_widen_it():
    calls, read = counting()
    with shared_reads():
        first = read_once("k", read)
        with shared_reads(live=True):
            assert read_once("k", read) == first
            assert read_once("live", read, live=True) != read_once("live", read, live=True)
        assert read_once("k", read) == first
