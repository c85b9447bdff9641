"""Spec loading: YAML with positions -> template rendering -> pydantic -> semantic checks.

Every problem becomes a Diagnostic with file:line:column and the field path; all of them are collected in one pass.
"""

from __future__ import annotations

import difflib
import hashlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from finetune.errors import Diagnostic, Diagnostics, SpecError
from finetune.spec.models import Spec
from finetune.spec.numbers import number_problems
from finetune.spec.template import render_tree
from finetune.spec.yaml_source import Path, SourceMap, dotted, load_yaml

MAX_SPEC_BYTES = 1_000_000


@dataclass(frozen=True)
class LoadedSpec:
    spec: Spec
    path: FsPath
    source: SourceMap
    digest: str  # sha256 of the rendered document: what the plan was made from
    warnings: list[Diagnostic] = field(default_factory=list)
    locked: dict[str, str] = field(default_factory=dict)  # pinned by the lock file: what -> the label requested

    @property
    def base_dir(self) -> FsPath:
        return self.path.parent


class SpecCheckError(SpecError):
    """The spec loaded but failed validation; carries what did load (sections in `broken` are None), so callers
    can check the rest (validate checks the data and model files too) and show every problem in one run."""

    def __init__(self, diagnostics: list[Diagnostic], *, spec: Spec, source: SourceMap, path: FsPath,
                 broken: set[str]) -> None:
        super().__init__(diagnostics)
        self.spec, self.source, self.path, self.broken = spec, source, path, broken


def load_spec(path: str | FsPath, *, variables: Mapping[str, Any] | None = None, check: bool = True,
              needs_data: bool = True) -> LoadedSpec:
    """Load and validate a spec file; raises SpecError carrying every problem found."""
    path = FsPath(path)
    file = str(path)
    diags = Diagnostics()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {file}") from None
    except IsADirectoryError:
        raise SpecError(f"{file} is a folder; pass the spec file itself") from None
    except OSError as exc:
        raise SpecError(f"cannot read {file}: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{file} is {len(raw)} bytes; a spec is at most {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{file}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8") from None

    data, source = load_yaml(text, file, diags)
    if data is not None and not isinstance(data, dict):
        diags.error(f"the spec must be a mapping of keys to values, not a {type(data).__name__}",
                    location=source.locate(()), hint="start with `apiVersion: finetune/v1`")
        data = None
    if data is None or diags.errors:
        raise SpecError(diags.errors)

    spec_vars = data.get("vars") or {}
    if not isinstance(spec_vars, dict):
        diags.error("`vars` must be a mapping", path="vars", location=source.locate(("vars",)))
        spec_vars = {}
    merged_vars = {**spec_vars, **(variables or {})}
    rendered = render_tree(data, merged_vars, source, diags)
    if diags.errors:
        raise SpecError(diags.errors)

    numbers = {where: (message, hint) for where, message, hint in number_problems(rendered)}
    for where, (message, hint) in numbers.items():
        diags.error(message, path=dotted(where), location=source.locate(where), hint=hint)
    spec, broken = _validate_model(rendered, source, diags, skip=set(numbers))
    broken |= {str(where[0]) for where in numbers}
    if check:  # the semantic checks run on every section the schema accepted, so one run shows every problem
        from finetune.spec.checks import check_spec

        check_spec(spec, source, diags, needs_data=needs_data, broken=broken)
    if diags.errors:
        raise SpecCheckError(diags.errors + diags.warnings, spec=spec, source=source, path=path, broken=broken)
    digest = hashlib.sha256(_canonical(rendered).encode()).hexdigest()
    return LoadedSpec(spec=spec, path=path.resolve(), source=source, digest=digest, warnings=diags.warnings)


def _canonical(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))


def _validate_model(data: dict, source: SourceMap, diags: Diagnostics, skip: set[Path]) -> tuple[Spec, set[str]]:
    """The spec, or when the schema refuses it, a partial one: each top-level section that validates on its own is
    kept, the rest are None and named in the returned set (checks that need them are skipped)."""
    try:
        return Spec.model_validate(data), set()
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    found = [_diagnostic_for(err, data, source) for err in errors
             if _data_path(err["loc"], data) not in skip]  # a too-large number is reported once, not twice
    diags.items.extend(_without_explained_missing(found))
    by_alias = {info.alias or name: name for name, info in Spec.model_fields.items()}
    broken = {by_alias[str(err["loc"][0])] for err in errors if err["loc"] and str(err["loc"][0]) in by_alias}
    if any(not err["loc"] for err in errors):
        broken |= set(Spec.model_fields)
    for err in errors:  # `compte:` leaves `compute` unset: checks of a missing compute would only repeat the typo
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            close = difflib.get_close_matches(str(err["loc"][0]), list(by_alias), n=1, cutoff=0.6)
            broken |= {by_alias[c] for c in close}
    return _partial_spec(data, broken), broken


def _partial_spec(data: dict, broken: set[str]) -> Spec:
    from pydantic import TypeAdapter

    values: dict[str, Any] = {}
    for name, info in Spec.model_fields.items():
        key = info.alias or name
        if name in broken:
            values[name] = None
        elif key in data:
            try:
                values[name] = TypeAdapter(info.annotation).validate_python(data[key])
            except ValidationError:  # only fails together with another section; treat it as broken too
                broken.add(name)
                values[name] = None
        else:
            values[name] = info.get_default(call_default_factory=True)
    return Spec.model_construct(**values)


def _without_explained_missing(found: list[Diagnostic]) -> list[Diagnostic]:
    """A typo yields 'unknown key skus (did you mean sku?)' and 'missing key sku': keep only the first."""
    suggested = {d.path.rsplit(".", 1)[0] + "." + d.hint.split("'")[1] for d in found
                 if d.message.startswith("unknown key") and d.hint.startswith("did you mean")}
    return [d for d in found if not (d.message.startswith("missing required key") and d.path in suggested)]


def _data_path(loc: tuple, data: Any) -> Path:
    """Pydantic locations include union tags and validator names; keep only the segments present in the data."""
    path: list[str | int] = []
    node = data
    for segment in loc:
        if isinstance(node, dict) and segment in node:
            path.append(segment)
            node = node[segment]
        elif isinstance(node, list) and isinstance(segment, int) and segment < len(node):
            path.append(segment)
            node = node[segment]
        elif isinstance(node, dict) and isinstance(segment, str) and not segment[:1].isupper() and segment not in (
                "hub", "local", "all", "per_role", "function-after", "function-before"):
            path.append(segment)  # a missing field: point at it by name, at its parent's position
            node = None
    return tuple(path)


def _diagnostic_for(err: dict, data: Any, source: SourceMap) -> Diagnostic:
    path = _data_path(err["loc"], data)
    kind = err["type"]
    message = err["msg"]
    hint = ""
    located = source.locate(path, key=kind == "extra_forbidden")
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        allowed = _allowed_keys(path[:-1], data)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key '{key}'"
        hint = f"did you mean '{close[0]}'?" if close else (f"allowed keys: {', '.join(sorted(allowed))}" if allowed
                                                            else "remove it")
    elif kind == "missing":
        message = f"missing required key '{path[-1]}'" if path else "missing required key"
        allowed = ""
        hint = "add it"
    elif kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        message = f"invalid value {_short(err.get('input'))}; expected {expected}"
        values = [v.strip(" '") for v in str(expected).replace(" or ", ",").split(",") if v.strip(" '")]
        close = difflib.get_close_matches(str(err.get("input")), values, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else ""
    elif kind == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        message = f"invalid value {_short(err.get('input'))}; expected {expected}"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message.rstrip('.')} (got {_short(err.get('input'))})"
    return Diagnostic(severity=_error(), message=message, path=dotted(path), hint=hint, location=located)


def _error():
    from finetune.errors import Severity

    return Severity.ERROR


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(parent: Path, data: Any) -> list[str]:
    """Field names (aliases) of the model that sits at `parent` in the data."""
    model: type[BaseModel] | None = Spec
    node = data
    for segment in parent:
        if model is None:
            return []
        node = node[segment] if isinstance(node, dict | list) else None
        if isinstance(segment, int):
            continue  # list item: `model` already names the item type
        info = model.model_fields.get(segment) or next(
            (f for f in model.model_fields.values() if f.alias == segment), None)
        if info is None:
            return []
        model = _model_in(info.annotation, node)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any, node: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation (unwrapping Optional, list, Annotated unions); best match for `node`."""
    candidates: list[type[BaseModel]] = []

    def walk(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            candidates.append(tp)
            return
        for arg in typing.get_args(tp):
            walk(arg)

    walk(annotation)
    if not candidates:
        return None
    keys = set(node) if isinstance(node, dict) else set()
    return max(candidates, key=lambda m: len(keys & {f.alias or n for n, f in m.model_fields.items()}))
