"""Which SDK e2e tests run against the emulator, and why the others do not.

``DESELECTED``: node-id substring -> reason. A test is deselected when its node id contains the key.
"""

from __future__ import annotations

REGISTRY = "needs a writable registry of its own (testFeed); creating registries is out of the emulator's scope"
DESELECTED: dict[str, str] = {
    "from_registry": REGISTRY,
    "in_registry": REGISTRY,
    "model_registry": REGISTRY,
    "test_crud_model_with_system_metadata": REGISTRY,
    "test_registry_environment": REGISTRY,
    "test_promote_model": REGISTRY,
    "test_environment_get": "reads the curated environment AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:1 of the real "
                            "workspace; the emulator holds no curated environments",
}


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
