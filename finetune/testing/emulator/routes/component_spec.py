"""What the service makes of a component spec it stores, and which of its fields a re-sent version may change.

Sources: recordings of the SDK's own component tests (Azure/azure-sdk-assets, python/ml/azure-ai-ml,
``tests/recordings/component/e2etests/test_component.pyTestComponent<test>.json``): test_command_component,
test_pytorch_component, test_tensorflow_component, test_mpi_component, test_simple_pipeline_component_create,
test_command_component_create_input_output_types[input_types_component.yml], test_component_download[command],
test_component_update_code, test_command_component_create_autoincrement, test_create_pipeline_component_from_job.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..http import ArmError

# `azureml:AzureML-x:33`, or its ARM id: a curated environment.
_CURATED_ENV = re.compile(r"^(?:azureml:|.*/environments/)(AzureML-[^:/@]+)(?::|/versions/)([^:/@]+)$")
# The service writes distribution types in its own casing (``"type": "Pytorch"``, ``"TensorFlow"``, ``"Mpi"``).
_DISTRIBUTION_TYPES = {"mpi": "Mpi", "pytorch": "Pytorch", "tensorflow": "TensorFlow"}
# Fields a re-sent version may not change: 400 'Failed to update component {name} since field "code" is
# immutable, try specifying a new version.' (test_component_update_code).
IMMUTABLE = ("code",)


def normalise(spec: dict[str, Any], name: str, version: str) -> None:
    """The spec as the service returns it: every scalar written as a string (``"is_deterministic": "True"``,
    ``"instance_count": "2"``), inputs saying whether they are optional, a command component on one instance
    unless it says otherwise, a curated environment named in the azureml registry, a pipeline component not
    deterministic unless it says so and its input defaults without the ``azureml:`` prefix, no ``_source`` and no
    null fields; the command as sent (its optional parts already written ``$[[...]]``). The nodes (``jobs``) of a
    pipeline component are kept as sent: the recorded service leaves them out, and the SDK's
    test_simple_pipeline_component_create expects them back once it returns them."""
    spec.pop("_source", None)
    for key in [k for k, v in spec.items() if v is None]:
        del spec[key]
    spec.setdefault("name", name)
    spec.setdefault("version", version)
    if isinstance(spec.get("environment"), str):
        spec["environment"] = curated_in_registry(spec["environment"])
    if spec.get("type") == "command":
        spec.setdefault("resources", {"instance_count": 1})
    if spec.get("type") == "pipeline":
        spec.setdefault("is_deterministic", False)
    for inp in (spec.get("inputs") or {}).values():
        if isinstance(inp, dict):
            inp.setdefault("optional", False)
            if spec.get("type") == "pipeline" and isinstance(inp.get("default"), str):
                inp["default"] = inp["default"].removeprefix("azureml:")
    distribution = spec.get("distribution")
    if isinstance(distribution, dict) and isinstance(distribution.get("type"), str):
        distribution["type"] = _DISTRIBUTION_TYPES.get(distribution["type"].lower(), distribution["type"])
    for key, value in spec.items():
        if key != "jobs":
            spec[key] = _as_strings(value)


def _as_strings(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: _as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_strings(v) for v in value]
    return value


def curated_in_registry(ref: str) -> str:
    """A component naming a curated environment comes back naming it in the azureml registry
    (``azureml://registries/azureml/environments/{name}/versions/{v}``)."""
    m = _CURATED_ENV.match(ref)
    return f"azureml://registries/azureml/environments/{m.group(1)}/versions/{m.group(2)}" if m else ref


def check_update(name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A named version re-sent with a changed immutable field is refused."""
    for field in IMMUTABLE:
        if old.get(field) != new.get(field):
            raise ArmError(400, "UserError", f'Failed to update component {name} since field "{field}" is immutable, '
                           "try specifying a new version.")


def timestamp_version(now: float) -> str:
    """A component container's ``nextVersion``: the time of asking, to the 100 ns (``2026-03-27-04-05-20-2300110``;
    test_command_component_create_autoincrement)."""
    t = datetime.fromtimestamp(now, UTC)
    return t.strftime("%Y-%m-%d-%H-%M-%S-") + f"{t.microsecond * 10:07d}"


def from_source_job(spec: dict[str, Any], job: dict[str, Any]) -> None:
    """A pipeline component made from a pipeline job (``sourceJobId``) takes the job's interface: its inputs and
    outputs by the job's names, a path input typed ``path``, a literal one typed by its value with the value as its
    default, an output typed as the job's (test_create_pipeline_component_from_job)."""
    for key in ("sourceJobId", "source_job_id", "jobs"):
        spec.pop(key, None)
    spec["inputs"] = {name: _input_from_job(inp or {}) for name, inp in (job.get("inputs") or {}).items()}
    spec["outputs"] = {name: {"type": (out or {}).get("jobOutputType", "uri_folder")}
                       for name, out in (job.get("outputs") or {}).items()}


def _input_from_job(inp: dict[str, Any]) -> dict[str, Any]:
    if inp.get("jobInputType") != "literal":
        return {"type": "path"}
    value = str(inp.get("value"))
    return {"type": _literal_type(value), "default": value}


def _literal_type(value: str) -> str:
    if value in ("True", "False", "true", "false"):
        return "boolean"
    for kind, parse in (("integer", int), ("number", float)):
        try:
            parse(value)
            return kind
        except ValueError:
            pass
    return "string"
