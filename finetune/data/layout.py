"""Find the files of each source split in a local file or folder (also used on hub snapshots)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from finetune.data.errors import DataError
from finetune.data.request import FORMATS

_EXTENSIONS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
# Hub-style shards: train_sft-00000-of-00003-a3ecf92756993583.parquet (the hash suffix is optional).
_SHARD = re.compile(r"^(?P<split>.+?)-(?P<index>\d{5})-of-\d{5}(?:-[0-9a-f]+)?$")


def format_of(path: Path, given: str | None = None) -> str:
    """The reader format of one file: the given one, else from its extension."""
    if given:
        return given
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"cannot tell the format of {path.name}",
            path=str(path),
            hint=f"use a .jsonl/.json/.parquet/.csv file or set the format to one of {', '.join(FORMATS)}",
        )
    return fmt


def splits_in(root: Path, fmt: str | None = None, subdir: str | None = None) -> dict[str, list[Path]]:
    """Source split name -> its files in order, for a file or a folder."""
    if not root.exists():
        raise DataError("no such file or folder", path=str(root), hint="check the source path")
    if root.is_file():
        format_of(root, fmt)
        found = {root.stem: [root]}
        found.setdefault("train", [root])  # what `datasets` calls a lone data file
        return found
    base = root / subdir if subdir else root
    rel = [p.relative_to(base).as_posix() for p in _data_files(base, fmt)]
    return {split: [base / f for f in files] for split, files in group_files(rel, fmt).items()}


def group_files(relative: Iterable[str], fmt: str | None = None) -> dict[str, list[str]]:
    """Group relative file paths (as in a folder or a hub repo listing) into splits.

    Accepted: `<split>.<ext>`, `<split>-00000-of-00003[-hash].<ext>` (at the top or under `data/`), and
    `<split>/<any>.<ext>` shards. Files of two formats for one split are ambiguous unless `fmt` picks one.
    """
    by_split: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for name in sorted(relative):
        path = Path(name)
        ext_fmt = _EXTENSIONS.get(path.suffix.lower())
        if ext_fmt is None or (fmt is not None and ext_fmt != fmt):
            continue
        parts = path.parts
        if parts and parts[0] == "data":
            parts = parts[1:]
        if len(parts) == 1:
            stem = Path(parts[0]).stem
            m = _SHARD.match(stem)
            split, order = (m["split"], m["index"]) if m else (stem, "")
        elif len(parts) == 2:
            split, order = parts[0], parts[1]
        else:
            continue
        by_split.setdefault(split, {}).setdefault(ext_fmt, []).append((order, name))
    result: dict[str, list[str]] = {}
    for split, by_fmt in by_split.items():
        if len(by_fmt) > 1:
            raise DataError(
                f"source split {split!r} has files in several formats ({', '.join(sorted(by_fmt))})",
                hint="set the source format to pick one",
            )
        (entries,) = by_fmt.values()
        result[split] = [name for _, name in sorted(entries)]
    return result


def _data_files(base: Path, fmt: str | None) -> list[Path]:
    files: list[Path] = []
    for top in sorted(base.iterdir()):
        if top.name.startswith("."):
            continue
        if top.is_file():
            files.append(top)
        elif top.is_dir():
            for inner in sorted(top.iterdir()):
                if inner.is_file() and not inner.name.startswith("."):
                    files.append(inner)
                elif top.name == "data" and inner.is_dir():
                    files.extend(sorted(p for p in inner.iterdir() if p.is_file()))
    return files
