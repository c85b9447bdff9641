"""References a submitted job makes to workspace assets (components, code, environments), checked at submit.

The service resolves a job's asset ids when it accepts the job, so a job naming a version that does not exist is
refused at submit instead of failing later (the SDK registers anonymous components and code before it submits, and
names them by ARM id: ``.../workspaces/{ws}/components/{name}/versions/{version}``).
"""

from __future__ import annotations

from typing import Any

from .assets import check_reference


def check_job_references(svc, props: dict[str, Any]) -> None:
    for field in ("componentId", "codeId", "environmentId"):
        check_reference(svc, props.get(field), "Job")
    for node_name, node in (props.get("jobs") or {}).items():
        for field in ("componentId", "codeId", "environmentId"):
            check_reference(svc, (node or {}).get(field), f"Node {node_name}")
