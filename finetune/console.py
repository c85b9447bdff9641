"""Terminal output: styled when stdout is a TTY and NO_COLOR is unset, plain otherwise; JSON on request.

Imports rich lazily so `finetune validate` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
