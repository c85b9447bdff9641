"""inspect(): what prepare() would find wrong with a local source, without writing anything.

The same pieces as prepare (resolve, sampling, the streaming readers, the per-row chat check), so a row is invalid
here exactly when prepare would drop or refuse it. Problems are collected, not raised: a broken JSON line ends the
reading of its file only, the next file and split are still read, and every invalid row is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from finetune.data import source
from finetune.data.checks import row_problems, valid_turns
from finetune.data.chunks import MAX_BAD_ROWS
from finetune.data.errors import DataError, SourceUnavailableError
from finetune.data.prepare import _per_file
from finetune.data.readers import _is_json_array, iter_selected
from finetune.data.request import PrepareRequest
from finetune.data.result import BadRow
from finetune.data.sampling import carve, kept_count, select

MAX_FILE_ERRORS = 10  # unreadable lines reported per file before giving up on it


@dataclass
class RoleCheck:
    role: str
    source_split: str
    source_rows: int = 0
    selected_rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)  # the first MAX_BAD_ROWS of them


@dataclass
class InspectResult:
    roles: dict[str, RoleCheck] = field(default_factory=dict)
    errors: list[DataError] = field(default_factory=list)  # unreadable sources and files (JSON errors: path:line)


def inspect(request: PrepareRequest) -> InspectResult:
    """Read the rows prepare() would select from a local source (or a hub dataset in the local HF cache) and check
    each; nothing is written, cached or downloaded. SourceUnavailableError when a hub dataset is not cached."""
    result = InspectResult()
    try:
        resolved = source.resolve(request, None, network=False, identify=False)
    except SourceUnavailableError:
        raise  # a hub dataset not (fully) in the local cache: nothing to inspect, and not a problem of the data
    except DataError as exc:
        result.errors.append(exc)
        return result
    for role, split in request.splits.items():
        files = resolved.splits[split]
        total = sum(f.rows for f in files)
        indices = select(total, kept_count(total, request.percentage_for(role), request.max_rows_for(role)),
                         request.sampling, request.seed, role)
        targets = {role: indices}
        if role == "train" and request.validation_from_train:
            targets["train"], targets["validation"] = carve(indices, request.validation_from_train, request.seed)
        for r, picked in targets.items():
            result.roles[r] = RoleCheck(r, split, total, len(picked))
        route = {i: r for r, picked in targets.items() for i in picked}
        _check_rows(files, sorted(route), route, result)
    return result


def _check_rows(files: list[source.SourceFile], wanted: list[int], route: dict[int, str],
                result: InspectResult) -> None:
    for f, offset, local in _per_file(files, wanted):
        errors = 0
        while local:
            failed, consumed = _check_file(f, offset, local, route, result)
            if failed is None:
                break
            result.errors.append(failed)
            errors += 1
            # A broken JSON line is one row: read on after it. Other formats fail as a whole file.
            if errors >= MAX_FILE_ERRORS or failed.line is None or not _line_format(f):
                break
            local = local[consumed + 1:]


def _check_file(f: source.SourceFile, offset: int, local: list[int], route: dict[int, str],
                result: InspectResult) -> tuple[DataError | None, int]:
    """Check the rows of one file until the end or the first unreadable row: (its error or None, rows read)."""
    read = 0
    try:
        for row in iter_selected(f.path, f.format, local):
            read += 1
            check = result.roles[route[offset + row.index]]
            if valid_turns(row.data) is not None:  # prepare's own test of a row (nothing to serialize here)
                check.valid_rows += 1
                continue
            check.invalid_rows += 1
            if len(check.bad_rows) < MAX_BAD_ROWS:
                check.bad_rows.append(BadRow(check.role, row.path, row.line, tuple(row_problems(row.data))))
    except DataError as exc:
        return exc, read
    return None, read


def _line_format(f: source.SourceFile) -> bool:
    return f.format == "jsonl" or (f.format == "json" and not _is_json_array(f.path))
