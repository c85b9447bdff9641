"""What preparation produced: plain frozen dataclasses with to_dict/from_dict (the cache manifest and --json)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EventKind = Literal["resolving", "cache_hit", "split_started", "rows", "split_done", "done"]


@dataclass(frozen=True)
class ProgressEvent:
    """A progress notification; `rows`/`total` count selected source rows of `role`."""

    kind: EventKind
    role: str | None = None
    rows: int = 0
    total: int = 0
    message: str = ""


Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class BadRow:
    role: str
    path: str
    line: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class RoleResult:
    """One output file. Rows: `source_rows` in the source split, `selected_rows` after percentage/max_rows/carving,
    `kept_rows` written, `dropped_rows` invalid and dropped (policy "drop")."""

    role: str
    source_split: str
    path: str
    sha256: str
    bytes: int
    source_rows: int
    selected_rows: int
    kept_rows: int
    dropped_rows: int
    stats: dict[str, int]
    bad_rows: tuple[BadRow, ...] = ()

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RoleResult:
        return RoleResult(
            **{**d, "bad_rows": tuple(BadRow(**{**b, "reasons": tuple(b["reasons"])}) for b in d["bad_rows"])}
        )


@dataclass(frozen=True)
class Overlap:
    """Rows of `role` that also occur in train, matched by prompt_id or by conversation content."""

    role: str
    rows: int
    by_prompt_id: int
    by_content: int
    examples: tuple[str, ...] = ()

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Overlap:
        return Overlap(**{**d, "examples": tuple(d["examples"])})


@dataclass(frozen=True)
class PrepareResult:
    key: str
    source: dict[str, Any]
    roles: dict[str, RoleResult]
    overlap: tuple[Overlap, ...]
    cache_hit: bool = False
    elapsed_s: float = field(default=0.0, compare=False)

    def hashes(self) -> dict[str, str]:
        """role -> sha256 of its JSONL file: what data-asset versions and the training fingerprint use."""
        return {role: r.sha256 for role, r in self.roles.items()}

    def role_stats(self) -> dict[str, dict[str, int]]:
        """role -> counts of its kept rows (rows, turns, chars, approx_tokens): what the time estimate uses."""
        return {role: dict(r.stats) for role, r in self.roles.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cache_hit": self.cache_hit,
            "elapsed_s": round(self.elapsed_s, 3),
            "source": self.source,
            "roles": {role: asdict(r) for role, r in self.roles.items()},
            "overlap": [asdict(o) for o in self.overlap],
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> PrepareResult:
        return PrepareResult(
            key=d["key"],
            source=d["source"],
            roles={role: RoleResult.from_dict(r) for role, r in d["roles"].items()},
            overlap=tuple(Overlap.from_dict(o) for o in d["overlap"]),
            cache_hit=d.get("cache_hit", False),
            elapsed_s=d.get("elapsed_s", 0.0),
        )


@dataclass(frozen=True)
class ProbeResult:
    """Whether `prepare` would be a cache hit, found without preparing (and without network).

    `hashes` is role -> sha256 when cached; otherwise the planner shows "(known after apply)" and `reason` says why.
    """

    cached: bool
    key: str | None
    hashes: dict[str, str]
    reason: str = ""
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # role -> counts, when cached
