"""Per-split statistics and the overlap keys used to report train/test leakage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CHARS_PER_TOKEN = 4  # a common rule of thumb for English text with BPE tokenizers; "approximate" on purpose


@dataclass
class SplitStats:
    """Counts over the kept rows of one split. Turns are messages; tokens are chars / CHARS_PER_TOKEN."""

    rows: int = 0
    turns: int = 0
    chars: int = 0
    approx_tokens: int = 0
    max_row_approx_tokens: int = 0

    def add(self, row: dict[str, Any]) -> None:
        messages = row["messages"]
        self.add_counts(len(messages), sum(len(m["content"]) for m in messages))

    def add_counts(self, turns: int, chars: int) -> None:
        """Add one row of `turns` messages with `chars` content characters."""
        self.rows += 1
        self.turns += turns
        self.chars += chars
        tokens = -(-chars // CHARS_PER_TOKEN)
        self.approx_tokens += tokens
        self.max_row_approx_tokens = max(self.max_row_approx_tokens, tokens)

    def merge(self, other: SplitStats) -> None:
        """Add another chunk's counts: the same totals as adding its rows here one by one."""
        self.rows += other.rows
        self.turns += other.turns
        self.chars += other.chars
        self.approx_tokens += other.approx_tokens
        self.max_row_approx_tokens = max(self.max_row_approx_tokens, other.max_row_approx_tokens)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def overlap_keys(row: dict[str, Any], turns: list[tuple[str, str]] | None = None) -> tuple[str | None, int]:
    """(prompt_id if the row has one, a hash of its conversation), for matching rows across splits.
    `turns`: the row's (role, content) pairs, when already at hand.

    Python's own hash is enough: the keys never leave the process tree (workers are forked, so they share its hash
    seed), and only counts and line numbers are reported.
    """
    prompt_id = row.get("prompt_id")
    if turns is None:
        turns = [(m["role"], m["content"]) for m in row["messages"]]
    content = hash(tuple(turns))
    return (prompt_id if isinstance(prompt_id, str) and prompt_id else None), content


class OverlapIndex:
    """The train split's keys; other splits are checked against it row by row."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.content: set[int] = set()

    def add(self, keys: tuple[str | None, int]) -> None:
        if keys[0] is not None:
            self.ids.add(keys[0])
        self.content.add(keys[1])

    def match(self, keys: tuple[str | None, int]) -> str | None:
        """How the row matches a train row ("prompt_id" or "content"), or None."""
        if keys[0] is not None and keys[0] in self.ids:
            return "prompt_id"
        if keys[1] in self.content:
            return "content"
        return None
