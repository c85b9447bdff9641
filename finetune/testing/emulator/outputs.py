"""A finished job's outputs registered as data assets, as the service does for outputs given a name.

The SDK sends a pipeline output's name as ``assetName``/``assetVersion`` and a node output's as ``name``/``version``;
a node output bound to a pipeline output (``{"type": "literal", "value": "${{parent.outputs...}}"}``) is registered
under the pipeline output's name (the SDK's test_register_output_yaml_succeed reads each back with data.get).
"""

from __future__ import annotations

from typing import Any

from .routes.models import store_version


def register_named_outputs(svc, job: dict[str, Any]) -> None:
    props = job["properties"]
    for out_name, out in (props.get("outputs") or {}).items():
        if isinstance(out, dict) and out.get("assetName"):
            _register(svc, job["name"], out_name, out, out["assetName"], out.get("assetVersion"))
    for node_name, node in (props.get("jobs") or {}).items():
        for out_name, out in ((node or {}).get("outputs") or {}).items():
            if isinstance(out, dict) and out.get("name") and out.get("type") != "literal":
                _register(svc, job["name"], f"{node_name}/{out_name}", out, out["name"], out.get("version"))


def _register(svc, job_name: str, path: str, out: dict[str, Any], name: str, version: str | None) -> None:
    entry = svc.state.setdefault("data", {}).get(name) or {"versions": {}}
    if version is None:  # the next integer version, as the service numbers an unversioned registration
        version = str(1 + max((int(v) for v in entry["versions"] if v.isdigit()), default=0))
    if version in entry["versions"]:
        return
    kind = out.get("jobOutputType") or out.get("job_output_type") or "uri_folder"
    uri = out.get("uri") or f"azureml://datastores/workspaceblobstore/paths/azureml/{job_name}/{path}/"
    store_version(svc, "data", name, version, {"dataType": kind, "dataUri": uri, "description": None,
                                              "properties": {"azureml.jobName": job_name}})
