"""Resolve a registry model or component reference; when it does not exist, say so in one line that helps.

A name the registry does not hold: the registry, close names (did-you-mean, from the registry's own list and the
offline catalog) and the versions of the closest one. A version it does not hold: the versions it does.
The look-ups behind the message run only on that failure path; a 404 is never retried (it would not change).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from finetune import catalog
from finetune.backends.azureml.errors import diagnose, is_not_found
from finetune.errors import FinetuneError

LATEST = "latest"  # the one label registry models and components carry (azure-ai-ml: label="latest")


def registry_asset(client: Any, kind: str, registry: str, name: str, *, version: str | None = None,
                   label: str | None = None) -> Any:
    """``client.models.get`` / ``client.components.get`` by version or label, with a helpful not-found error."""
    ops = _ops(client, kind)
    what = f"{kind} {registry}/{name} " + (f"version {version}" if version else f"label {label or LATEST}")
    try:
        return ops.get(name, version=version) if version else ops.get(name, label=label or LATEST)
    except FinetuneError:
        raise
    except Exception as exc:  # noqa: BLE001 - SDK errors are translated here, at the seam
        if not is_not_found(exc):
            raise diagnose(exc, what) from exc
        raise not_found(ops, kind, registry, name, version) from exc


def _ops(client: Any, kind: str) -> Any:
    return client.models if kind == "model" else client.components


def _listed(fn) -> list[Any]:
    """A listing used only to explain a failure: when it fails too, explain with less."""
    try:
        return list(fn())
    except Exception:  # noqa: BLE001 - best effort; the not-found error is what the user gets either way
        return []


def version_key(version: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-]", str(version)))


def versions_of(ops: Any, name: str) -> list[str]:
    return sorted({str(v.version) for v in _listed(lambda: ops.list(name=name)) if v.version}, key=version_key)


def describe_versions(versions: list[str]) -> str:
    return f"versions {', '.join(versions)}; label {LATEST} = {versions[-1]}"


def catalog_names(kind: str, registry: str) -> list[str]:
    """What the offline catalog knows in this registry (no request)."""
    return catalog.model_names(registry) if kind == "model" else catalog.component_names()


def close_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    by_lower = {c.lower(): c for c in candidates if c}
    return [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)]


def not_found(ops: Any, kind: str, registry: str, name: str, version: str | None) -> FinetuneError:
    field = "model" if kind == "model" else "finetune.component"
    versions = versions_of(ops, name)
    if versions:
        return FinetuneError(
            f"{kind} {name} has no version {version} in registry {registry} ({describe_versions(versions)})",
            hint=f"set {field}.version to one of them, or use {field}.label: {LATEST}")
    listed = [getattr(c, "name", None) for c in _listed(ops.list)]
    suggestions = close_names(name, [n for n in listed if n] + catalog_names(kind, registry))
    message = f"{kind} {name} not found in registry {registry}"
    if not suggestions:
        return FinetuneError(message, hint=f"check {field}.name and {field}.registry (names are case-sensitive)")
    best = suggestions[0]
    best_versions = versions_of(ops, best)
    detail = f" ({best}: {describe_versions(best_versions)})" if best_versions else ""
    return FinetuneError(f"{message}; did you mean {' or '.join(suggestions)}?{detail}",
                         hint=f"set {field}.name: {best}")
