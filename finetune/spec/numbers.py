"""Numbers anywhere in the document are checked before the schema sees them.

YAML has no limit on integers (`epochs: 1000...0` with 400 digits is an int) and reads `1e400` as infinity. Those
crash float conversions, seeds and 64-bit fields far from the spec; here they become one located error each.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from finetune.spec.yaml_source import Path

INT_LIMIT = 2**63 - 1  # what Azure ML's and every 64-bit consumer's integers hold


def number_problems(data: Any, path: Path = ()) -> Iterator[tuple[Path, str, str]]:
    """(path, message, hint) for every integer beyond 64 bits and every infinite or NaN float in `data`."""
    if isinstance(data, dict):
        for key, value in data.items():
            if path or key != "vars":  # template variables are only text until a template uses them
                yield from number_problems(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from number_problems(value, (*path, i))
    elif isinstance(data, bool):
        return
    elif isinstance(data, int) and abs(data) > INT_LIMIT:
        yield path, f"{_digits(data)}-digit number is too large (at most {INT_LIMIT})", "use a smaller number"
    elif isinstance(data, float) and not math.isfinite(data):
        yield path, f"{data} is not a finite number", "write a finite number"


def _digits(value: int) -> str:
    try:
        return str(len(str(abs(value))))
    except ValueError:  # past Python's 4300-digit conversion limit
        return "4300+"
