"""Which rows of a source split to keep: a pure function of (row count, request), so it is reproducible."""

from __future__ import annotations

import random


def kept_count(total: int, percentage: float, max_rows: int | None) -> int:
    """Rows kept from `total`: round(pct * total / 100), as `datasets`' `split[:pct%]` does, capped by max_rows."""
    k = int(round(percentage * total / 100.0))
    return min(k, max_rows) if max_rows is not None else k


def select(total: int, count: int, sampling: str, seed: int, role: str) -> list[int]:
    """Sorted 0-based indices of the kept rows. "random" is seeded per role, so train and test draw differently."""
    if sampling == "head" or count >= total:
        return list(range(min(count, total)))
    return sorted(random.Random(f"{seed}/{role}").sample(range(total), count))


def carve(indices: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split kept train indices into (train, validation); validation gets round(fraction * n) seeded rows."""
    n_val = int(round(fraction * len(indices)))
    if n_val == 0:
        return indices, []
    picked = set(random.Random(f"{seed}/validation_from_train").sample(indices, n_val))
    return [i for i in indices if i not in picked], [i for i in indices if i in picked]
