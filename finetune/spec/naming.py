"""Stable names: the notebook's timestamps make new entities on every run; a declarative tool must not."""

from __future__ import annotations

import hashlib

ENDPOINT_SUFFIX_LEN = 7  # "-" + 6 hex digits
VERSION_SUFFIX_LEN = 6  # blue/green deployments: "-v" + up to 4 digits of the model version


def stable_suffix(*parts: str) -> str:
    """6 hex digits derived from the workspace identity and the spec name: the same on every apply."""
    digest = hashlib.sha256("/".join(p.lower() for p in parts).encode()).hexdigest()
    return digest[:6]


def endpoint_name(base: str, unique_suffix: bool, workspace_identity: str, spec_name: str) -> str:
    if not unique_suffix:
        return base
    return f"{base}-{stable_suffix(workspace_identity, spec_name)}"
