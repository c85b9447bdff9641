"""Compute clusters: create/update/get/list/delete, with LRO via computeOperationsStatus."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..http import ArmError, EmuResponse
from ..lifecycle import slow_factor, start_operation
from ..state import system_data, vm_sizes, ws_prefix
from .common import WS, check_workspace, ok, require_body
from .workspace import family_limit, family_usage

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"


def compute_status_url(svc, op_id: str, api_version: str | None) -> str:
    cfg = svc.cfg
    path = (f"/subscriptions/{cfg['subscription_id']}/providers/{MLS}/locations/{cfg['location']}"
            f"/computeOperationsStatus/{op_id}")
    return svc.arm_url(path, api_version, "&service=new")


def register(router: Router) -> None:
    @router.add("GET", WS + "/computes", "computes.list")
    def list_computes(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        return ok({"value": [copy.deepcopy(c) for c in svc.state["computes"].values()]})

    @router.add("GET", WS + "/computes/{name}", "computes.get")
    def get_compute(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        c = svc.state["computes"].get(name.lower())
        if c is None:
            raise ArmError(404, "UserError", f"Compute with name {name} is not found.", detail_code="ComputeNotFound")
        return ok(copy.deepcopy(c))

    @router.add("PUT", WS + "/computes/{name}", "computes.create")
    def put_compute(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        body = require_body(req)
        props = body.get("properties") or {}
        inner = copy.deepcopy(props.get("properties") or {})
        compute_type = props.get("computeType", "AmlCompute")
        size_name = str(inner.get("vmSize") or "STANDARD_DS3_V2")
        size = {s["name"].lower(): s for s in vm_sizes()}.get(size_name.lower())
        if size is None:
            raise ArmError(
                400, "UserError",
                f"The specified VM size {size_name} is not supported in region {svc.cfg['location']}.",
                detail_code="VmSizeNotSupported",
            )
        existing = svc.state["computes"].get(name.lower())
        now = svc.clock.now()
        if existing is not None:
            old_size = str(existing["properties"]["properties"].get("vmSize", ""))
            if old_size.lower() != size_name.lower():
                raise ArmError(400, "UserError", "Updating vmSize of an existing AmlCompute is not supported.",
                               detail_code="BadArgument")
        else:
            nodes = int((inner.get("scaleSettings") or {}).get("maxNodeCount", 1) or 1)
            need = nodes * size["vCPUs"]
            fam = size["family"]
            if family_usage(svc).get(fam, 0) + need > family_limit(svc, fam):
                raise ArmError(
                    400, "UserError",
                    f"Not enough quota available for {size['name']} in SubscriptionId {svc.cfg['subscription_id']}. "
                    f"Current usage/limit: {family_usage(svc).get(fam, 0)}/{family_limit(svc, fam)}. "
                    f"Additional required: {need}.",
                    detail_code="OutOfQuota",
                )
        inner.setdefault("vmPriority", "Dedicated")
        inner.setdefault("osType", "Linux")
        inner.setdefault("scaleSettings", {"maxNodeCount": 1, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT2M"})
        inner.update({"currentNodeCount": None, "targetNodeCount": None, "nodeStateCounts": None,
                      "allocationState": None, "errors": None, "remoteLoginPortPublicAccess": "Enabled",
                      "isolatedNetwork": False, "enableNodePublicIp": True, "enableBatchPrivateLink": False})
        inner.setdefault("subnet", None)
        inner.setdefault("virtualMachineImage", None)
        # The admin user and ssh key come back, the password never does (recorded: adminUserPassword null).
        if isinstance(inner.get("userAccountCredentials"), dict):
            inner["userAccountCredentials"] = {**inner["userAccountCredentials"], "adminUserPassword": None}
        created = existing["emulator_created"] if existing else now
        compute = {
            "id": f"{ws_prefix(svc.cfg)}/computes/{name}",
            "name": name,
            "type": f"{MLS}/workspaces/computes",
            "location": body.get("location") or svc.cfg["location"],
            "tags": body.get("tags") or {},
            "identity": body.get("identity"),
            "properties": {
                "createdOn": system_data(created)["createdAt"],
                "modifiedOn": system_data(now)["createdAt"],
                "disableLocalAuth": props.get("disableLocalAuth", False),
                "description": props.get("description"),
                "resourceId": None,
                "computeType": compute_type,
                "computeLocation": svc.cfg["location"],
                "provisioningState": "Creating" if existing is None else "Updating",
                "provisioningErrors": None,
                "provisioningWarnings": None,
                "isAttachedCompute": False,
                "properties": inner,
            },
            "systemData": system_data(now, created),
            "emulator_created": created,
        }
        svc.state["computes"][name.lower()] = compute
        duration = svc.durations.compute_create if existing is None else 1.0
        duration = slow_factor(svc, "computes.create", req.path, duration)
        op = start_operation(svc, "compute.create", {"name": name}, duration, api_version=req.api_version)
        out = copy.deepcopy(compute)
        out.pop("emulator_created")
        status = 201 if existing is None else 200
        headers = {"Azure-AsyncOperation": compute_status_url(svc, op["id"], req.api_version)}
        return ok(out, status, headers)

    @router.add("DELETE", WS + "/computes/{name}", "computes.delete")
    def delete_compute(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        c = svc.state["computes"].get(name.lower())
        if c is None:
            return EmuResponse.empty(204)
        c["properties"]["provisioningState"] = "Deleting"
        duration = slow_factor(svc, "computes.delete", req.path, svc.durations.compute_delete)
        op = start_operation(svc, "compute.delete", {"name": name}, duration, api_version=req.api_version)
        url = compute_status_url(svc, op["id"], req.api_version)
        return EmuResponse.empty(202, {"Azure-AsyncOperation": url, "Location": url})
