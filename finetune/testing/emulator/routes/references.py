"""References a submitted job makes to workspace assets (components, code, environments), checked at submit.

The service resolves a job's asset ids when it accepts the job, so a job naming a version that does not exist is
refused at submit instead of failing later (the SDK registers anonymous components and code before it submits, and
names them by ARM id: ``.../workspaces/{ws}/components/{name}/versions/{version}``).
"""

from __future__ import annotations

import re
from typing import Any

from ..http import ArmError
from .assets import KINDS, find_version

_ARM_ASSET = re.compile(r"/workspaces/[^/]+/(codes|components|environments)/([^/]+)/versions/([^/]+)$", re.IGNORECASE)


def is_curated(kind: str, name: str) -> bool:
    """Curated environments (``AzureML-...``) are in every workspace; the service accepted a job naming
    ``azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33`` (command_job__test_command_job_serverless.json)."""
    return kind == "environments" and name.startswith("AzureML-")


def check_reference(svc, ref: Any, where: str) -> None:
    m = _ARM_ASSET.search(ref) if isinstance(ref, str) else None
    if not m:
        return
    kind, name, version = m.group(1).lower(), m.group(2), m.group(3)
    if not is_curated(kind, name) and find_version(svc, kind, name, version) is None:
        label = KINDS[kind]
        raise ArmError(400, "UserError", f"{where}: {label.lower()} {name}:{version} ({ref}) was not found in the "
                       "workspace.", detail_code=f"{label}NotFound")


def check_job_references(svc, props: dict[str, Any]) -> None:
    for field in ("componentId", "codeId", "environmentId"):
        check_reference(svc, props.get(field), "Job")
    for node_name, node in (props.get("jobs") or {}).items():
        for field in ("componentId", "codeId", "environmentId"):
            check_reference(svc, (node or {}).get(field), f"Node {node_name}")
