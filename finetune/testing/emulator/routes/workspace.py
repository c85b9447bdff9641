"""Workspace, VM sizes and core quota (usages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..state import vm_sizes, workspace_body
from .common import LOC, RG, WS, check_workspace, ok

if TYPE_CHECKING:
    from ..router import Router

DEFAULT_FAMILY_QUOTA = 1000


def register(router: Router) -> None:
    @router.add("GET", WS, "workspaces.get")
    def get_workspace(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        return ok(workspace_body(svc.cfg))

    @router.add("GET", RG + "/workspaces", "workspaces.list")
    def list_workspaces(svc, req, sub, rg):
        if rg.lower() != svc.cfg["resource_group"].lower():
            return ok({"value": []})
        return ok({"value": [workspace_body(svc.cfg)]})

    @router.add("GET", LOC + "/vmSizes", "vmSizes.list")
    def list_vm_sizes(svc, req, sub, loc):
        return ok({"value": vm_sizes()})

    @router.add("GET", LOC + "/usages", "usages.list")
    def list_usages(svc, req, sub, loc):
        return ok({"value": usages(svc)})


def family_usage(svc) -> dict[str, int]:
    """vCPUs in use per VM family: compute clusters count at max nodes (the quota AmlCompute reserves)."""
    sizes = {s["name"].lower(): s for s in vm_sizes()}
    used: dict[str, int] = {}
    for c in svc.state["computes"].values():
        inner = c["properties"].get("properties") or {}
        size = sizes.get(str(inner.get("vmSize", "")).lower())
        if size:
            nodes = int((inner.get("scaleSettings") or {}).get("maxNodeCount", 1) or 1)
            used[size["family"]] = used.get(size["family"], 0) + nodes * size["vCPUs"]
    for ep in svc.state["endpoints"].values():
        for dep in ep["deployments"].values():
            size = sizes.get(str(dep["properties"].get("instanceType", "")).lower())
            if size:
                count = int((dep.get("sku") or {}).get("capacity", 1) or 1)
                used[size["family"]] = used.get(size["family"], 0) + count * size["vCPUs"]
    return used


def family_limit(svc, family: str) -> int:
    # Family names differ in case and spaces between Azure's lists; the key is normalized as set_quota stores it.
    return int(svc.state["quota"].get(family.lower().replace(" ", ""), DEFAULT_FAMILY_QUOTA))


def usages(svc) -> list[dict]:
    cfg = svc.cfg
    used = family_usage(svc)
    families = sorted({s["family"] for s in vm_sizes()})
    out = []
    for fam in families:
        out.append({
            "id": f"/subscriptions/{cfg['subscription_id']}/providers/Microsoft.MachineLearningServices/locations/"
                  f"{cfg['location']}/usages/{fam}",
            "amlWorkspaceLocation": cfg["location"],
            "type": "Microsoft.MachineLearningServices/vCPUs",
            "unit": "Count",
            "currentValue": used.get(fam, 0),
            "limit": family_limit(svc, fam),
            "name": {"value": fam, "localizedValue": f"{fam} Cluster Dedicated vCPUs"},
        })
    return out
