"""Which SDK e2e tests run against the emulator, and why the others do not.

``DESELECTED``: node-id substring -> reason. A test is deselected when its node id contains the key.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

from pytest import ParameterSet

REGISTRY = "needs a writable registry of its own (testFeed); creating registries is out of the emulator's scope"
REGISTRY_ASSETS = ("runs components, environments or models from the SDK team's registries (sdk-test, azureml); "
                   "registries and their assets are out of the emulator's scope")
# Pipeline nodes that another service runs, which no workspace emulator should fake.
AUTOML = "an AutoML node: the AutoML service trains it (its task settings are that service's, not the workspace's)"
SPARK = "a Spark node: needs Synapse / serverless Spark compute"
DATA_TRANSFER = "a data transfer node: copies through database / file-system connections to external stores"
PROMPT_FLOW = "a prompt flow node: needs the promptflow runtime and its connections"
PARALLEL = "a parallel node: batch inference through ParallelRunStep"
DESELECTED: dict[str, str] = {
    "with_automl_": AUTOML,
    "automl_in_pipeline": AUTOML,
    "register_automl_output": AUTOML,
    "[automl/": AUTOML,
    "with_spark_job": SPARK,
    "[spark/": SPARK,
    "data_transfer": DATA_TRANSFER,
    "with_flow": PROMPT_FLOW,
    "flow_node_skip_input_filtering": PROMPT_FLOW,
    "parallel_job": PARALLEL,
    "parallel_component_job": PARALLEL,
    "test_parallel_component": PARALLEL,
    "[parallel_with_": PARALLEL,
    # components of those services (test_component.py)
    "test_automl_component": "an AutoML component, in the workspace and a registry: its task is the AutoML service's",
    "test_spark_component": "a Spark component: its entry and conf are for Synapse / serverless Spark compute",
    "test_datatransfer_": "a data transfer component: its copy task runs in the data transfer service",
    "test_load_component_from_flow": "a prompt flow component (flow.dag.yaml): needs promptflow to build and run it",
    "with_registries": REGISTRY_ASSETS,
    "with_registry_model_as_input": REGISTRY_ASSETS,
    "from_registry": REGISTRY,
    "in_registry": REGISTRY,
    "model_registry": REGISTRY,
    "test_crud_model_with_system_metadata": REGISTRY,
    "test_registry_environment": REGISTRY,
    "test_promote_model": REGISTRY,
    "when_registry_assets": REGISTRY,
    "test_command_job_local": "a local run (compute: local): the SDK fetches an execution bundle from the execution "
                              "service and runs Microsoft's bootstrapper here, which starts the job in Docker",
    "singularity": "needs a Singularity virtual cluster, which is not a workspace resource",
    "test_environment_get": "reads the curated environment AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:1 of the real "
                            "workspace; the emulator holds no curated environments",
}


def area_of(nodeid: str) -> str:
    from tests.sdk_e2e.sdk_tests import AREAS

    for area, rel in AREAS.items():
        if rel in nodeid:
            return area
    return "other"


# Tests that fail against the emulator today, with what the emulator lacks. The default run (CI) leaves them out so
# that it stays green on what works; bench/sdk_e2e.py runs and counts them.
KNOWN_GAPS: dict[str, str] = {}

CONFIG = re.compile(r"""["'](\.?/?tests/test_configs/[^"'{}]+)["']""")


def missing_config(item, root: Path) -> str | None:
    """A config file the test opens that neither the sdist nor tests/sdk_e2e/test_configs provides."""
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return None
    others = _other_params(item)
    for path in CONFIG.findall(source):
        if path not in others and not (root / path).exists():
            return path
    return None


def _other_params(item) -> set[str]:
    """The string values of the test's parametrize cases other than this item's (a case opens only its own)."""
    def strings(values) -> set[str]:
        return {v for v in values if isinstance(v, str)}

    mine = strings(getattr(getattr(item, "callspec", None), "params", {}).values())
    values: set[str] = set()
    for mark in item.iter_markers("parametrize"):
        for case in mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("argvalues", ()):
            case = case.values if isinstance(case, ParameterSet) else case
            values |= strings(case if isinstance(case, tuple) else (case,))
    return values - mine


def reason_for(item, root: Path) -> str | None:
    for key, reason in DESELECTED.items():
        if key in item.nodeid:
            return reason
    if not os.environ.get("FINETUNE_SDK_E2E") == "all":
        for key, gap in KNOWN_GAPS.items():
            if key in item.nodeid:
                return f"known emulator gap (bench/sdk_e2e.py runs it): {gap}"
    if item.get_closest_marker("skip"):  # the SDK skips it itself (reported as skipped): its configs are not needed
        return None
    path = missing_config(item, root)
    return missing_config_reason(path) if path else None


def missing_config_reason(path: str) -> str:
    return f"opens {path}, which the azure-ai-ml sdist does not ship"


def apply(config, items, root: Path) -> dict[str, str]:
    """Deselect what does not run against the emulator; returns node id -> reason."""
    keep, drop, reasons = [], [], {}
    for item in items:
        reason = reason_for(item, root) if "/_sdk/" in item.nodeid else None
        if reason:
            drop.append(item)
            reasons[item.nodeid] = reason
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    return reasons
