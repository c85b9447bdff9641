"""Terminal output: styled when stdout is a TTY and NO_COLOR is unset, plain otherwise; JSON on request.

Imports rich lazily so `finetune validate` starts fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def _console(stderr: bool):
    from rich.console import Console

    # No explicit file: rich then writes to whatever sys.stdout/sys.stderr is at print time.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, no_color="NO_COLOR" in os.environ,
                   emoji=False, markup=False)


def _styled(stderr: bool) -> bool:
    """Colour only for a terminal without NO_COLOR; plain text otherwise (and no rich import)."""
    stream = sys.stderr if stderr else sys.stdout
    return "NO_COLOR" not in os.environ and stream.isatty()


def print_lines(lines: Iterable[tuple[str, str | None]], *, stderr: bool = False) -> None:
    if not _styled(stderr):
        stream = sys.stderr if stderr else sys.stdout
        stream.write("".join(text + "\n" for text, _ in lines))
        stream.flush()
        return
    console = _console(stderr)
    for text, style in lines:
        console.print(text, style=style)


def say(text: str, style: str | None = None, *, stderr: bool = False) -> None:
    print_lines([(text, style)], stderr=stderr)


_json_stdout: list[Any] = []  # the real stdout while `json_only_stdout` holds it


@contextmanager
def json_only_stdout(enabled: bool = True) -> Iterator[None]:
    """With --json, stdout carries exactly one JSON document: whatever else is printed to stdout meanwhile (by a
    dependency) goes to stderr, and `print_json` writes to the real stdout."""
    if not enabled:
        yield
        return
    real = sys.stdout
    _json_stdout.append(real)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = real
        _json_stdout.remove(real)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _PlainStream:
    """A text stream that drops ANSI escape codes (and the blank lines a dependency prints around them)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._dropped = False  # the last write was escape codes only: a bare newline after it is theirs too

    def write(self, text: str) -> int:
        plain = ANSI.sub("", text)
        if plain != text and not plain.strip():
            self._dropped = True
            return len(text)
        if self._dropped and plain == "\n":
            self._dropped = False
            return len(text)
        self._dropped = False
        return self._stream.write(plain)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def plain_when_not_styled() -> Iterator[None]:
    """On a non-terminal or with NO_COLOR, no escape codes reach stdout or stderr, whatever a dependency prints
    (the SDK colours its upload messages unconditionally)."""
    saved = sys.stdout, sys.stderr
    if not _styled(False):
        sys.stdout = _PlainStream(sys.stdout)
    if not _styled(True):
        sys.stderr = _PlainStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def print_json(data: Any) -> None:
    stream = _json_stdout[-1] if _json_stdout else sys.stdout
    stream.write(json.dumps(data, indent=2, default=str) + "\n")
    stream.flush()
