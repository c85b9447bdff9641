"""Workspace models: containers and versions (list with $orderBy/$top, tags), registration from job outputs."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from ..http import ArmError, EmuResponse
from ..state import system_data, ws_prefix
from .common import WS, check_workspace, ok, order_by_created, paged, require_body

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"


def _not_found(name: str) -> ArmError:
    return ArmError(404, "UserError", "The specified resource was not found.", detail_code="ModelNotFound",
                    detail_message=f"Model container with name: {name} not found.")


def _check_model_uri(svc, uri: str) -> None:
    m = re.match(r"azureml://jobs/([^/]+)/outputs/([^/]+)", uri or "")
    if not m:
        return
    job = svc.state["jobs"].get(m.group(1).lower())
    if job is None:
        raise ArmError(400, "UserError", f"Job {m.group(1)} referenced by {uri} was not found.",
                       detail_code="JobNotFound")
    status = job["properties"]["status"]
    if status != "Completed":
        raise ArmError(400, "UserError", f"Job {m.group(1)} is {status}; outputs are only available after the job "
                       "has Completed.", detail_code="JobOutputNotAvailable")
    if m.group(2) not in (job["properties"].get("outputs") or {}):
        raise ArmError(400, "UserError", f"Job {m.group(1)} has no output named {m.group(2)}.",
                       detail_code="JobOutputNotFound")


def _matches_tags(body: dict[str, Any], tag_filter: str) -> bool:
    tags = body["properties"].get("tags") or {}
    for part in tag_filter.split(","):
        key, _, value = part.partition("=")
        if key not in tags or (value and tags[key] != value):
            return False
    return True


def register(router: Router) -> None:
    @router.add("GET", WS + "/models", "models.list")
    def list_containers(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        return ok({"value": [_container(svc, n, e) for n, e in svc.state["models"].items()]})

    @router.add("GET", WS + "/models/{name}", "models.get")
    def get_container(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        entry = svc.state["models"].get(name)
        if entry is None:
            raise _not_found(name)
        return ok(_container(svc, name, entry))

    @router.add("GET", WS + "/models/{name}/versions", "models.listVersions")
    def list_versions(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        entry = svc.state["models"].get(name)
        if entry is None:
            raise _not_found(name)
        items = [copy.deepcopy(v) for v in entry["versions"].values()]
        q = req.query
        if q.get("version"):
            items = [v for v in items if v["name"] == q["version"]]
        if q.get("tags"):
            items = [v for v in items if _matches_tags(v, q["tags"])]
        if q.get("listViewType", "ActiveOnly") == "ActiveOnly":
            items = [v for v in items if not v["properties"].get("isArchived")]
        items = order_by_created(items, q)
        return ok(paged(items, q))

    @router.add("GET", WS + "/models/{name}/versions/{version}", "models.getVersion")
    def get_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = svc.state["models"].get(name)
        if entry is None or version not in entry["versions"]:
            raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="ModelNotFound",
                           detail_message=f"Model {name}:{version} not found.")
        return ok(copy.deepcopy(entry["versions"][version]))

    @router.add("PUT", WS + "/models/{name}/versions/{version}", "models.createVersion")
    def put_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        body = require_body(req)
        props = copy.deepcopy(body.get("properties") or {})
        entry = svc.state["models"].setdefault(name, {"versions": {}, "created": svc.clock.now()})
        existing = entry["versions"].get(version)
        now = svc.clock.now()
        if existing is not None:
            old = existing["properties"]
            if props.get("modelUri") and props["modelUri"] != old.get("modelUri"):
                raise ArmError(409, "UserError", f"Model {name}:{version} already exists with different content; "
                               "only tags, description and properties can change.", detail_code="ModelVersionInUse")
            for field in ("tags", "description", "properties", "isArchived", "stage"):
                if field in props:
                    old[field] = props[field]
            existing["systemData"]["lastModifiedAt"] = system_data(now)["lastModifiedAt"]
            return ok(copy.deepcopy(existing), 200, {"Location": svc.arm_url(req.path, req.api_version)})
        _check_model_uri(svc, props.get("modelUri", ""))
        job = re.match(r"azureml://jobs/([^/]+)/", props.get("modelUri") or "")
        props.setdefault("flavors", {})
        if props["flavors"] is None:
            props["flavors"] = {}
        props.setdefault("tags", {})
        props.setdefault("properties", {})
        props.setdefault("isAnonymous", False)
        props.setdefault("isArchived", False)
        props["jobName"] = job.group(1) if job else props.get("jobName")
        props["provisioningState"] = "Succeeded"
        props.setdefault("stage", "Development")
        props.setdefault("autoDeleteSetting", None)
        props.setdefault("intellectualProperty", None)
        mv = {
            "id": f"{ws_prefix(svc.cfg)}/models/{name}/versions/{version}",
            "name": version,
            "type": f"{MLS}/workspaces/models/versions",
            "properties": props,
            "systemData": system_data(now, now),
        }
        entry["versions"][version] = mv
        return ok(copy.deepcopy(mv), 201, {"Location": svc.arm_url(req.path, req.api_version)})

    @router.add("PATCH", WS + "/models/{name}/versions/{version}", "models.updateVersion")
    def patch_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = svc.state["models"].get(name)
        if entry is None or version not in entry["versions"]:
            raise _not_found(name)
        props = (require_body(req).get("properties") or {})
        mv = entry["versions"][version]
        for field in ("tags", "description", "isArchived", "stage"):
            if field in props:
                mv["properties"][field] = props[field]
        return ok(copy.deepcopy(mv))

    @router.add("DELETE", WS + "/models/{name}/versions/{version}", "models.deleteVersion")
    def delete_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = svc.state["models"].get(name)
        if entry is None or entry["versions"].pop(version, None) is None:
            return EmuResponse.empty(204)
        return EmuResponse.empty(200)


def _container(svc, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    versions = sorted(entry["versions"].values(), key=lambda v: v["systemData"]["createdAt"])
    latest = versions[-1]["name"] if versions else None
    return {
        "id": f"{ws_prefix(svc.cfg)}/models/{name}",
        "name": name,
        "type": f"{MLS}/workspaces/models",
        "properties": {"description": None, "tags": {}, "properties": {}, "isArchived": False,
                       "latestVersion": latest, "nextVersion": str(int(latest) + 1) if latest and latest.isdigit()
                       else None, "provisioningState": "Succeeded"},
        "systemData": system_data(entry.get("created", 0.0)),
    }
