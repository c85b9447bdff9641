"""Workspace models and data assets: containers and versions (list with $orderBy/$top, tags), archive;
models registered from job outputs.

The two asset kinds share REST shapes, so one set of handlers serves both (`kind` is the URL segment).
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from ..http import ArmError, EmuResponse
from ..state import system_data, ws_prefix
from .common import WS, check_workspace, ok, one_page, order_by_created, paged, require_body

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"


ASSET_KINDS = {"models": "Model", "data": "Data"}


def _not_found(name: str, label: str = "Model") -> ArmError:
    return ArmError(404, "UserError", "The specified resource was not found.", detail_code=f"{label}NotFound",
                    detail_message=f"{label} container with name: {name} not found.")


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


def _normalise_folder_uri(props: dict[str, Any]) -> None:
    """Folder data (uri_folder, mltable) is stored with a trailing slash, whatever the client sent; the SDK's
    e2e tests (dataset/e2etests/test_data.py) expect ``path`` to end in ``/<folder>/``."""
    uri = props.get("dataUri")
    if str(props.get("dataType", "")).lower() in ("uri_folder", "mltable") and isinstance(uri, str) \
            and uri and not uri.endswith("/"):
        props["dataUri"] = uri + "/"


def _matches_tags(body: dict[str, Any], tag_filter: str) -> bool:
    tags = body["properties"].get("tags") or {}
    for part in tag_filter.split(","):
        key, _, value = part.partition("=")
        if key not in tags or (value and tags[key] != value):
            return False
    return True


def register(router: Router) -> None:
    for kind, label in ASSET_KINDS.items():
        _register_kind(router, kind, label)


def _register_kind(router: Router, kind: str, label: str) -> None:
    def assets(svc) -> dict[str, Any]:
        return svc.state.setdefault(kind, {})  # older persisted states have no data assets yet

    @router.add("GET", WS + f"/{kind}", f"{kind}.list")
    def list_containers(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        return ok(one_page(svc, req, [_container(svc, n, e, kind) for n, e in assets(svc).items()]))

    @router.add("GET", WS + f"/{kind}/{{name}}", f"{kind}.get")
    def get_container(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc).get(name)
        if entry is None:
            raise _not_found(name, label)
        return ok(_container(svc, name, entry, kind))

    @router.add("GET", WS + f"/{kind}/{{name}}/versions", f"{kind}.listVersions")
    def list_versions(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc).get(name)
        if entry is None:
            raise _not_found(name, label)
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

    @router.add("GET", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.getVersion")
    def get_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc).get(name)
        if entry is None or version not in entry["versions"]:
            raise ArmError(404, "UserError", "The specified resource was not found.", detail_code=f"{label}NotFound",
                           detail_message=f"{label} {name}:{version} not found.")
        return ok(copy.deepcopy(entry["versions"][version]))

    @router.add("PUT", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.createVersion")
    def put_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        body = require_body(req)
        props = copy.deepcopy(body.get("properties") or {})
        entry = assets(svc).setdefault(name, {"versions": {}, "created": svc.clock.now()})
        existing = entry["versions"].get(version)
        now = svc.clock.now()
        if existing is not None:
            old = existing["properties"]
            uri = "modelUri" if kind == "models" else "dataUri"
            if props.get(uri) and props[uri] != old.get(uri):
                raise ArmError(409, "UserError", f"{label} {name}:{version} already exists with different content; "
                               "only tags, description and properties can change.", detail_code=f"{label}VersionInUse")
            for field in ("tags", "description", "properties", "isArchived", "stage"):
                if field in props:
                    old[field] = props[field]
            existing["systemData"]["lastModifiedAt"] = system_data(now)["lastModifiedAt"]
            return ok(copy.deepcopy(existing), 200, {"Location": svc.arm_url(req.path, req.api_version)})
        if kind == "models":
            _check_model_uri(svc, props.get("modelUri", ""))
        mv = store_version(svc, kind, name, version, props)
        return ok(copy.deepcopy(mv), 201, {"Location": svc.arm_url(req.path, req.api_version)})

    @router.add("PATCH", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.updateVersion")
    def patch_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc).get(name)
        if entry is None or version not in entry["versions"]:
            raise _not_found(name, label)
        props = (require_body(req).get("properties") or {})
        mv = entry["versions"][version]
        for field in ("tags", "description", "isArchived", "stage"):
            if field in props:
                mv["properties"][field] = props[field]
        return ok(copy.deepcopy(mv))

    @router.add("DELETE", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.deleteVersion")
    def delete_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc).get(name)
        if entry is None or entry["versions"].pop(version, None) is None:
            return EmuResponse.empty(204)
        return EmuResponse.empty(200)


def _container(svc, name: str, entry: dict[str, Any], kind: str = "models") -> dict[str, Any]:
    versions = sorted(entry["versions"].values(), key=lambda v: v["systemData"]["createdAt"])
    latest = versions[-1]["name"] if versions else None
    return {
        "id": f"{ws_prefix(svc.cfg)}/{kind}/{name}",
        "name": name,
        "type": f"{MLS}/workspaces/{kind}",
        "properties": {"description": None, "tags": {}, "properties": {}, "isArchived": False,
                       "latestVersion": latest, "nextVersion": str(int(latest) + 1) if latest and latest.isdigit()
                       else None, "provisioningState": "Succeeded"},
        "systemData": system_data(entry.get("created", 0.0)),
    }


def store_version(svc, kind: str, name: str, version: str, props: dict[str, Any]) -> dict[str, Any]:
    """A new model or data version with the fields the service fills in (also a job's registered outputs)."""
    entry = svc.state.setdefault(kind, {}).setdefault(name, {"versions": {}, "created": svc.clock.now()})
    now = svc.clock.now()
    if kind == "data":
        _normalise_folder_uri(props)
    if kind == "models":
        props["flavors"] = props.get("flavors") or {}
    job = re.match(r"azureml://jobs/([^/]+)/", props.get("modelUri") or "")
    props.setdefault("tags", {})
    props.setdefault("properties", {})
    props.setdefault("isAnonymous", False)
    props.setdefault("isArchived", False)
    if kind == "models":
        props["jobName"] = job.group(1) if job else props.get("jobName")
    props["provisioningState"] = "Succeeded"
    props.setdefault("stage", "Development")
    props.setdefault("autoDeleteSetting", None)
    props.setdefault("intellectualProperty", None)
    mv = {
        "id": f"{ws_prefix(svc.cfg)}/{kind}/{name}/versions/{version}",
        "name": version,
        "type": f"{MLS}/workspaces/{kind}/versions",
        "properties": props,
        "systemData": system_data(now, now),
    }
    entry["versions"][version] = mv
    return mv
