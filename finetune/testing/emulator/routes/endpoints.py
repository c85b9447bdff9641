"""Managed online endpoints and deployments (LRO via mfeOperationsStatus / mfeOperationsResults)."""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING, Any

from ..http import ArmError, EmuResponse
from ..lifecycle import slow_factor, start_operation
from ..state import managed_online_skus, system_data, vm_sizes, ws_prefix
from .common import WS, check_workspace, ok, one_page, require_body
from .workspace import family_limit, family_usage

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"
EP = WS + "/onlineEndpoints/{endpoint}"
DEP = EP + "/deployments/{deployment}"


def _status_url(svc, op_id: str, api_version: str | None, results: bool = False) -> str:
    cfg = svc.cfg
    kind = "mfeOperationsResults" if results else "mfeOperationsStatus"
    path = (f"/subscriptions/{cfg['subscription_id']}/providers/{MLS}/locations/{cfg['location']}/{kind}/"
            f"oeidp:{cfg['workspace_id']}:{op_id}")
    return svc.arm_url(path, api_version)


def get_endpoint(svc, name: str) -> dict[str, Any]:
    ep = svc.state["endpoints"].get(name.lower())
    if ep is None:
        raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="EndpointNotFound",
                       detail_message=f"Online endpoint {name} not found in workspace {svc.cfg['workspace_name']}.")
    return ep


def get_deployment(svc, ep: dict[str, Any], name: str) -> dict[str, Any]:
    dep = ep["deployments"].get(name.lower())
    if dep is None:
        raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="DeploymentNotFound",
                       detail_message=f"Deployment {name} not found on endpoint {ep['body']['name']}.")
    return dep


def _busy(body: dict[str, Any]) -> bool:
    return body["properties"].get("provisioningState") in ("Creating", "Updating", "Deleting")


def _validate_traffic(ep: dict[str, Any], traffic: dict[str, Any]) -> dict[str, int]:
    traffic = {str(k): int(v) for k, v in (traffic or {}).items()}
    for dep_name in traffic:
        dep = ep["deployments"].get(dep_name.lower())
        if dep is None:
            raise ArmError(400, "UserError", f"Traffic references deployment {dep_name}, which does not exist on "
                           f"endpoint {ep['body']['name']}.", detail_code="DeploymentNotFound")
    total = sum(traffic.values())
    if traffic and total not in (0, 100):
        raise ArmError(400, "UserError", f"Traffic values must sum to 100 (got {total}).",
                       detail_code="InvalidTrafficAllocation")
    return traffic


def _model_exists(svc, model: str) -> bool:
    if not model:
        return False
    if model.startswith("azureml://registries/"):
        parts = model.split("/")
        try:
            reg, name, version = parts[3], parts[5], parts[7]
        except IndexError:
            return False
        return version in (svc.state["registries"].get(reg, {}).get("models", {}).get(name) or {}).get("versions", {})
    if "/models/" in model and "/versions/" in model:
        name = model.split("/models/")[1].split("/")[0]
        version = model.split("/versions/")[1].split("/")[0]
        return version in (svc.state["models"].get(name) or {}).get("versions", {})
    return True


def register(router: Router) -> None:
    @router.add("GET", WS + "/onlineEndpoints", "onlineEndpoints.list")
    def list_endpoints(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        return ok(one_page(svc, req, [copy.deepcopy(e["body"]) for e in svc.state["endpoints"].values()]))

    @router.add("GET", EP, "onlineEndpoints.get")
    def get(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        return ok(copy.deepcopy(get_endpoint(svc, endpoint)["body"]))

    @router.add("PUT", EP, "onlineEndpoints.create")
    def put(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        body = require_body(req)
        props = copy.deepcopy(body.get("properties") or {})
        existing = svc.state["endpoints"].get(endpoint.lower())
        now = svc.clock.now()
        if existing is None:
            ep_body = {
                "id": f"{ws_prefix(svc.cfg)}/onlineEndpoints/{endpoint}",
                "name": endpoint,
                "type": f"{MLS}/workspaces/onlineEndpoints",
                "location": body.get("location") or svc.cfg["location"],
                "kind": body.get("kind") or "Managed",
                "tags": body.get("tags") or {},
                "identity": {**(body.get("identity") or {"type": "SystemAssigned"}),
                             "principalId": "00000000-0000-0000-0000-0000000000e1",
                             "tenantId": svc.cfg["tenant_id"]},
                "properties": {
                    "description": props.get("description"),
                    "properties": {**(props.get("properties") or {}),
                                   "azureml.onlineendpointid":
                                       f"{ws_prefix(svc.cfg)}/onlineendpoints/{endpoint}".lower()},
                    "scoringUri": None,
                    "swaggerUri": None,
                    "authMode": props.get("authMode", "Key"),
                    "provisioningState": "Creating",
                    "compute": None,
                    "traffic": {},
                    "mirrorTraffic": {},
                    "publicNetworkAccess": props.get("publicNetworkAccess", "Enabled"),
                },
                "systemData": system_data(now, now),
            }
            ep = {"body": ep_body, "deployments": {},
                  "keys": {"primaryKey": secrets.token_urlsafe(24), "secondaryKey": secrets.token_urlsafe(24)}}
            if props.get("traffic"):
                ep["pending_traffic"] = _validate_traffic(ep, props["traffic"])
            svc.state["endpoints"][endpoint.lower()] = ep
            kind, base, status = "endpoint.create", svc.durations.endpoint_create, 201
        else:
            ep = existing
            if _busy(ep["body"]):
                raise ArmError(409, "UserError", f"Endpoint {endpoint} has an operation in progress; retry later.",
                               detail_code="OperationInProgress")
            eb = ep["body"]
            if props.get("authMode") and props["authMode"] != eb["properties"]["authMode"]:
                raise ArmError(400, "UserError", "The auth mode of an existing endpoint cannot be changed.",
                               detail_code="BadArgument")
            eb["tags"] = body.get("tags") or eb["tags"]
            if "description" in props:
                eb["properties"]["description"] = props["description"]
            if "traffic" in props:
                ep["pending_traffic"] = _validate_traffic(ep, props["traffic"])
            if "mirrorTraffic" in props:
                eb["properties"]["mirrorTraffic"] = props["mirrorTraffic"] or {}
            eb["properties"]["provisioningState"] = "Updating"
            kind, base, status = "endpoint.update", svc.durations.endpoint_update, 200
        duration = slow_factor(svc, "onlineEndpoints.create", req.path, base)
        op = start_operation(svc, kind, {"endpoint": endpoint}, duration, api_version=req.api_version)
        out = copy.deepcopy(ep["body"])
        url = _status_url(svc, op["id"], req.api_version)
        out["properties"]["properties"]["AzureAsyncOperationUri"] = url
        headers = {"Azure-AsyncOperation": url, "Location": svc.arm_url(req.path, req.api_version),
                   "x-ms-async-operation-timeout": "PT30M"}
        return ok(out, status, headers)

    @router.add("PATCH", EP, "onlineEndpoints.update")
    def patch(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        body = require_body(req)
        if "tags" in body:
            ep["body"]["tags"] = body["tags"] or {}
        props = body.get("properties") or {}
        if "traffic" in props:
            ep["body"]["properties"]["traffic"] = _validate_traffic(ep, props["traffic"])
        return ok(copy.deepcopy(ep["body"]))

    @router.add("DELETE", EP, "onlineEndpoints.delete")
    def delete(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        ep = svc.state["endpoints"].get(endpoint.lower())
        if ep is None:
            return EmuResponse.empty(204)
        ep["body"]["properties"]["provisioningState"] = "Deleting"
        duration = slow_factor(svc, "onlineEndpoints.delete", req.path, svc.durations.endpoint_delete)
        op = start_operation(svc, "endpoint.delete", {"endpoint": endpoint}, duration, api_version=req.api_version)
        return EmuResponse.empty(202, {"Location": _status_url(svc, op["id"], req.api_version, results=True),
                                       "Retry-After": "1", "x-ms-async-operation-timeout": "PT30M"})

    @router.add("POST", EP + "/listKeys", "onlineEndpoints.listKeys")
    def list_keys(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        if ep["body"]["properties"]["authMode"].lower() != "key":
            raise ArmError(400, "UserError", "Keys are only available for endpoints with authMode Key.",
                           detail_code="BadArgument")
        return ok(dict(ep["keys"]))

    @router.add("POST", EP + "/regenerateKeys", "onlineEndpoints.regenerateKeys")
    def regenerate_keys(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        which = (req.json() or {}).get("keyType", "Primary").lower()
        ep["keys"]["primaryKey" if which == "primary" else "secondaryKey"] = secrets.token_urlsafe(24)
        return EmuResponse.empty(200)

    @router.add("POST", EP + "/token", "onlineEndpoints.token")
    def token(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        from ..clock import iso

        now = svc.clock.now()
        return ok({"accessToken": "aml-" + ep["keys"]["primaryKey"], "tokenType": "Bearer",
                   "expiryTimeUtc": int(now + 3600), "refreshAfterTimeUtc": int(now + 1800), "_": iso(now)})

    # ---- deployments -------------------------------------------------------------------------------------
    @router.add("GET", EP + "/deployments", "onlineDeployments.list")
    def list_deployments(svc, req, sub, rg, ws, endpoint):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        return ok({"value": [_public(d) for d in ep["deployments"].values()]})

    @router.add("GET", DEP, "onlineDeployments.get")
    def get_dep(svc, req, sub, rg, ws, endpoint, deployment):
        check_workspace(svc, sub, rg, ws)
        return ok(_public(get_deployment(svc, get_endpoint(svc, endpoint), deployment)))

    @router.add("PUT", DEP, "onlineDeployments.create")
    def put_dep(svc, req, sub, rg, ws, endpoint, deployment):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        body = require_body(req)
        props = copy.deepcopy(body.get("properties") or {})
        existing = ep["deployments"].get(deployment.lower())
        if existing is not None and _busy(existing):
            raise ArmError(409, "UserError", f"Deployment {deployment} has an operation in progress; retry later.",
                           detail_code="OperationInProgress")
        instance_type = str(props.get("instanceType") or "")
        if instance_type.lower() not in managed_online_skus():
            raise ArmError(400, "UserError", f"The specified VM size {instance_type} is not supported for managed "
                           "online deployments.", detail_code="SkuNotSupported")
        model = str(props.get("model") or "")
        if not _model_exists(svc, model):
            raise ArmError(400, "UserError", f"Model {model} was not found.", detail_code="ModelNotFound")
        sku = copy.deepcopy(body.get("sku") or {"name": "Default", "capacity": 1})
        if existing is None:
            size = {s["name"].lower(): s for s in vm_sizes()}.get(instance_type.lower())
            if size:
                need = int(sku.get("capacity", 1) or 1) * size["vCPUs"]
                fam = size["family"]
                if family_usage(svc).get(fam, 0) + need > family_limit(svc, fam):
                    raise ArmError(400, "UserError", f"Not enough quota available for {instance_type}: need {need} "
                                   f"vCPUs of {fam}.", detail_code="OutOfQuota")
        props.setdefault("scaleSettings", {"scaleType": "Default"})
        props.setdefault("endpointComputeType", "Managed")
        props["provisioningState"] = "Creating" if existing is None else "Updating"
        now = svc.clock.now()
        dep = {
            "id": f"{ep['body']['id']}/deployments/{deployment}",
            "name": deployment,
            "type": f"{MLS}/workspaces/onlineEndpoints/deployments",
            "location": body.get("location") or svc.cfg["location"],
            "kind": body.get("kind") or "Managed",
            "tags": body.get("tags") or {},
            "sku": sku,
            "properties": props,
            "systemData": system_data(now, now if existing is None else None),
        }
        if existing is not None:
            dep["systemData"]["createdAt"] = existing["systemData"]["createdAt"]
        ep["deployments"][deployment.lower()] = dep
        kind = "deployment.create" if existing is None else "deployment.update"
        base = svc.durations.deployment_create if existing is None else svc.durations.deployment_update
        duration = slow_factor(svc, "onlineDeployments.create", req.path, base)
        final, error = "Succeeded", None
        fault = svc.faults.take("onlineDeployments.create", req.path, {"liveness_failed"})
        if fault is not None:
            final = "Failed"
            msg = fault.params.get("message", "ResourceNotReady: User container has crashed or terminated: "
                                              "Liveness probe failed: HTTP probe failed with statuscode: 502.")
            error = {"code": "ResourceNotReady", "message": msg,
                     "logs": fault.params.get("logs", f"Liveness probe failed for deployment {deployment}.\n"
                                                      "Container exited with code 137 (OOMKilled).\n")}
        op = start_operation(svc, kind, {"endpoint": endpoint, "deployment": deployment}, duration,
                             api_version=req.api_version, final=final, error=error)
        url = _status_url(svc, op["id"], req.api_version)
        headers = {"Azure-AsyncOperation": url, "Location": svc.arm_url(req.path, req.api_version),
                   "x-ms-async-operation-timeout": "PT30M"}
        return ok(_public(dep), 201 if existing is None else 200, headers)

    @router.add("PATCH", DEP, "onlineDeployments.update")
    def patch_dep(svc, req, sub, rg, ws, endpoint, deployment):
        check_workspace(svc, sub, rg, ws)
        dep = get_deployment(svc, get_endpoint(svc, endpoint), deployment)
        body = require_body(req)
        if "tags" in body:
            dep["tags"] = body["tags"] or {}
        if "sku" in body and body["sku"]:
            dep["sku"].update(body["sku"])
        return ok(_public(dep))

    @router.add("DELETE", DEP, "onlineDeployments.delete")
    def delete_dep(svc, req, sub, rg, ws, endpoint, deployment):
        check_workspace(svc, sub, rg, ws)
        ep = get_endpoint(svc, endpoint)
        dep = ep["deployments"].get(deployment.lower())
        if dep is None:
            return EmuResponse.empty(204)
        if (ep["body"]["properties"].get("traffic") or {}).get(dep["name"], 0) > 0:
            raise ArmError(400, "UserError", f"Deployment {deployment} still receives traffic; set its traffic to 0 "
                           "before deleting it.", detail_code="BadArgument")
        dep["properties"]["provisioningState"] = "Deleting"
        duration = slow_factor(svc, "onlineDeployments.delete", req.path, svc.durations.deployment_delete)
        op = start_operation(svc, "deployment.delete", {"endpoint": endpoint, "deployment": deployment}, duration,
                             api_version=req.api_version)
        return EmuResponse.empty(202, {"Location": _status_url(svc, op["id"], req.api_version, results=True),
                                       "Retry-After": "1", "x-ms-async-operation-timeout": "PT30M"})

    @router.add("POST", DEP + "/getLogs", "onlineDeployments.getLogs")
    def get_logs(svc, req, sub, rg, ws, endpoint, deployment):
        check_workspace(svc, sub, rg, ws)
        dep = get_deployment(svc, get_endpoint(svc, endpoint), deployment)
        lines = [f"Deployment {dep['name']}: provisioningState={dep['properties']['provisioningState']}"]
        if dep.get("emulator_logs"):
            lines.append(dep["emulator_logs"].rstrip("\n"))
        else:
            lines.append("Model loaded. Scoring server listening on port 5001 (emulated).")
        tail = (req.json() or {}).get("tail")
        if tail:
            lines = lines[-int(tail):]
        return ok({"content": "\n".join(lines) + "\n"})

    @router.add("GET", DEP + "/skus", "onlineDeployments.listSkus")
    def list_skus(svc, req, sub, rg, ws, endpoint, deployment):
        check_workspace(svc, sub, rg, ws)
        dep = get_deployment(svc, get_endpoint(svc, endpoint), deployment)
        return ok({"value": [{"resourceType": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/"
                              "deployments", "sku": {"name": "Default", "tier": "Standard"},
                              "capacity": {"minimum": 1, "maximum": 50, "default": dep["sku"].get("capacity", 1),
                                           "scaleType": "Manual"}}]})


def _public(dep: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in dep.items() if not k.startswith("emulator")}
