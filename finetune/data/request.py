"""What to prepare: the data layer's own input, independent of the spec format.

The spec layer maps its `data:` section onto a `PrepareRequest`; nothing here knows about YAML or Azure.
Dict-valued fields are copied into read-only mappings, so a request cannot change after its cache key is computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from finetune.data.errors import DataError

ROLES: tuple[str, ...] = ("train", "validation", "test", "sample")
"""Output roles, in output order. `train` is required; the others are optional."""

FORMATS: tuple[str, ...] = ("jsonl", "json", "parquet", "csv")

Sampling = Literal["head", "random"]
RowPolicy = Literal["error", "drop"]


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face Hub dataset.

    `revision` None means the floating `main` ref: it is resolved to a commit (from the local HF cache's refs first,
    the hub otherwise) and that commit goes into the cache key, so a moved `main` re-prepares.
    """

    dataset: str
    revision: str | None = None
    config: str | None = None

    def __post_init__(self) -> None:
        if not self.dataset or self.dataset.strip() != self.dataset or " " in self.dataset:
            raise DataError(
                f"invalid hub dataset id {self.dataset!r}", hint="use 'owner/name', e.g. HuggingFaceH4/ultrachat_200k"
            )


@dataclass(frozen=True)
class LocalSource:
    """Local files. Exactly one of `path` (a file or a folder) and `files` (source split -> file(s)) is set.

    - a single file is one split, named both by its stem (``train_sft.jsonl`` -> ``train_sft``) and ``train``;
    - a folder holds ``<split>.<ext>`` files, ``<split>/`` subfolders of shards, or hub-style shards
      ``<split>-00000-of-00003[-hash].<ext>`` (also under ``data/``).
    `format` is one of FORMATS; None infers it from each file's extension.
    """

    path: str | None = None
    files: Mapping[str, tuple[str, ...]] | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.files is None):
            raise DataError("a local source needs exactly one of 'path' (file or folder) or 'files' (split -> files)")
        if self.format is not None and self.format not in FORMATS:
            raise DataError(f"unknown data format {self.format!r}", hint=f"use one of {', '.join(FORMATS)}")
        if self.path is not None:
            object.__setattr__(self, "path", str(self.path))
        if self.files is not None:
            files: dict[str, tuple[str, ...]] = {}
            for split, value in self.files.items():
                paths = (value,) if isinstance(value, str) or not isinstance(value, Sequence) else value
                files[str(split)] = tuple(str(p) for p in paths)
                if not files[str(split)]:
                    raise DataError(f"source split {split!r} lists no files")
            object.__setattr__(self, "files", MappingProxyType(files))


Source = HubSource | LocalSource


@dataclass(frozen=True)
class PrepareRequest:
    """Everything that determines the prepared JSONL files (and so the cache key).

    - `splits`: role -> source split name; roles are train (required), validation, test, sample.
    - `percentage`: share of each source split to keep, in (0, 100]; a float for all roles or a role -> float
      mapping (roles not listed keep 100). Rows kept = round(pct * rows / 100), like `datasets`' `split[:pct%]`.
    - `sampling`: "head" keeps the first rows (what the notebook does); "random" keeps a seeded random subset,
      in source order.
    - `max_rows`: an upper bound on rows per role after the percentage, an int for all roles or role -> int.
    - `validation_from_train`: a fraction in (0, 1) of the kept train rows moved to `validation` (seeded, so
      deterministic); not allowed together with an explicit `validation` split.
    - `invalid_row_policy`: "error" fails on the first bad rows; "drop" drops and reports them.
    """

    source: HubSource | LocalSource
    splits: Mapping[str, str]
    percentage: float | Mapping[str, float] = 100.0
    sampling: Sampling = "head"
    seed: int = 0
    max_rows: int | Mapping[str, int] | None = None
    validation_from_train: float | None = None
    invalid_row_policy: RowPolicy = "error"

    def __post_init__(self) -> None:
        if not isinstance(self.source, HubSource | LocalSource):
            raise DataError("source must be a HubSource or a LocalSource")
        splits = {str(k): str(v) for k, v in dict(self.splits).items()}
        unknown = sorted(set(splits) - set(ROLES))
        if unknown:
            raise DataError(f"unknown split role(s) {', '.join(unknown)}", hint=f"roles are {', '.join(ROLES)}")
        if "train" not in splits:
            raise DataError("splits must map the 'train' role to a source split", hint="e.g. {train: train_sft}")
        object.__setattr__(self, "splits", MappingProxyType({r: splits[r] for r in ROLES if r in splits}))

        if isinstance(self.percentage, Mapping):
            pcts = {str(k): _check_pct(v, str(k)) for k, v in self.percentage.items()}
            bad = sorted(set(pcts) - set(ROLES))
            if bad:
                raise DataError(f"percentage names unknown role(s) {', '.join(bad)}")
            object.__setattr__(self, "percentage", MappingProxyType(pcts))
        else:
            object.__setattr__(self, "percentage", _check_pct(self.percentage, "all splits"))

        if self.sampling not in ("head", "random"):
            raise DataError(f"unknown sampling {self.sampling!r}", hint="use 'head' or 'random'")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise DataError(f"seed must be an integer, got {self.seed!r}")
        if self.invalid_row_policy not in ("error", "drop"):
            raise DataError(f"unknown invalid_row_policy {self.invalid_row_policy!r}", hint="use 'error' or 'drop'")

        if isinstance(self.max_rows, Mapping):
            caps = {str(k): _check_cap(v) for k, v in self.max_rows.items()}
            if set(caps) - set(ROLES):
                raise DataError(f"max_rows names unknown role(s) {', '.join(sorted(set(caps) - set(ROLES)))}")
            object.__setattr__(self, "max_rows", MappingProxyType(caps))
        elif self.max_rows is not None:
            object.__setattr__(self, "max_rows", _check_cap(self.max_rows))

        if self.validation_from_train is not None:
            frac = self.validation_from_train
            if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac < 1:
                raise DataError(f"validation_from_train must be a fraction in (0, 1), got {frac!r}")
            if "validation" in splits:
                raise DataError("both a 'validation' split and validation_from_train are set", hint="choose one")
            object.__setattr__(self, "validation_from_train", float(frac))

    def roles(self) -> tuple[str, ...]:
        """Output roles in output order, including a validation carved out of train."""
        have = set(self.splits) | ({"validation"} if self.validation_from_train else set())
        return tuple(r for r in ROLES if r in have)

    def percentage_for(self, role: str) -> float:
        if isinstance(self.percentage, Mapping):
            return self.percentage.get(role, 100.0)
        return float(self.percentage)

    def max_rows_for(self, role: str) -> int | None:
        if isinstance(self.max_rows, Mapping):
            return self.max_rows.get(role)
        return self.max_rows


def _check_pct(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or not 0 < value <= 100:
        raise DataError(f"percentage for {where} must be in (0, 100], got {value!r}")
    return float(value)


def _check_cap(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"max_rows must be a positive integer, got {value!r}")
    return value
