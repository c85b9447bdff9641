"""Diagnostics and the product's exception types.

Expected problems (bad spec, missing quota, unreachable hub) are Diagnostics: one line each, pointing at the user's
file, line and column, saying what is wrong and how to fix it. They accumulate so one run shows every problem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    path: str = ""  # dotted field path in the spec, e.g. "compute.sku"
    hint: str = ""  # how to fix it
    location: Location | None = None
    address: str = ""  # resource address, for preflight findings

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.path}: " if self.path else (f"{self.address}: " if self.address else "")
        fix = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.severity.value}: {what}{self.message}{fix}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["location"] = asdict(self.location) if self.location else None
        return data


@dataclass
class Diagnostics:
    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, **kwargs) -> None:
        self.items.append(Diagnostic(Severity.ERROR, message, **kwargs))

    def warning(self, message: str, **kwargs) -> None:
        self.items.append(Diagnostic(Severity.WARNING, message, **kwargs))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def __bool__(self) -> bool:
        return bool(self.items)


class FinetuneError(Exception):
    """An expected failure the user can fix; carries one or more diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic] | str, *, hint: str = "") -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(Severity.ERROR, diagnostics, hint=hint)]
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))


class SpecError(FinetuneError):
    """The spec file cannot be loaded or validated."""
