"""Which SDK e2e tests run against the emulator, and why the others do not.

``DESELECTED``: node-id substring -> reason. A test is deselected when its node id contains the key.
"""

from __future__ import annotations

DESELECTED: dict[str, str] = {}


def area_of(nodeid: str) -> str:
    from tests.sdk_e2e.sdk_tests import AREAS

    for area, rel in AREAS.items():
        if rel in nodeid:
            return area
    return "other"


def reason_for(nodeid: str) -> str | None:
    for key, reason in DESELECTED.items():
        if key in nodeid:
            return reason
    return None


def apply(config, items) -> None:
    keep, drop = [], []
    for item in items:
        (drop if "/_sdk/" in item.nodeid and reason_for(item.nodeid) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
