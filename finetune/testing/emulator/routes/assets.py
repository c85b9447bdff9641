"""Workspace code assets, components and environments: containers and versions, as the SDK uses them.

Sources (tests/fixtures/azureml-api/examples/2025-12-01/Workspace/...): CodeVersion/createOrUpdate.json,
CodeVersion/createOrGetStartPendingUpload.json, ComponentVersion/createOrUpdate.json,
EnvironmentVersion/createOrUpdate.json; the SDK's ``CodeOperations.create_or_update`` (a ``versions?hash=``
look-up before any upload, whose hits it re-reads by the name and version in their ids, so the look-up spans the
workspace and answers 200 with an empty list when nothing matches), and ``get(label="latest")``
(``versions?$orderBy=createdtime desc&$top=1``).
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import TYPE_CHECKING, Any

from ..http import ArmError, EmuResponse
from ..state import system_data, ws_prefix
from . import component_spec
from .common import WS, check_workspace, ok, order_by_created, paged, require_body

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"
KINDS = {"codes": "Code", "components": "Component", "environments": "Environment"}
# What a PUT on an existing version may change; anything else is the asset's content and is immutable.
MUTABLE = ("tags", "description", "properties", "isArchived", "stage")
# (A component version's spec may be re-sent changed: the SDK's test_component_create_default_code re-creates
# version 0.0.1 with a new description and display name and reads them back.)
CONTENT = {"codes": ("codeUri",), "components": (), "environments": ("image", "condaFile", "build")}
MUTABLE_SPEC = {"components": "componentSpec"}
# (...except its immutable fields: component_spec.IMMUTABLE.)
DEFAULT_COMPONENT_VERSION = "azureml_default"  # what components.get(name) asks for (azure-ai-ml constants)


def assets(svc, kind: str) -> dict[str, Any]:
    return svc.state.setdefault(kind, {})  # older persisted states have none of these yet


def version_not_found(kind: str, name: str, version: str) -> ArmError:
    label = KINDS[kind]
    return ArmError(404, "UserError", "The specified resource was not found.", detail_code=f"{label}VersionNotFound",
                    detail_message=f"{label} {name}:{version} not found.")


def container_not_found(kind: str, name: str) -> ArmError:
    label = KINDS[kind]
    return ArmError(404, "UserError", "The specified resource was not found.", detail_code=f"{label}NotFound",
                    detail_message=f"{label} container with name: {name} not found.")


def find_version(svc, kind: str, name: str, version: str) -> dict[str, Any] | None:
    return (assets(svc, kind).get(name) or {}).get("versions", {}).get(version)


def _active(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    view = query.get("listViewType", "ActiveOnly")
    if view == "ActiveOnly":
        return [v for v in items if not v["properties"].get("isArchived")]
    if view == "ArchivedOnly":
        return [v for v in items if v["properties"].get("isArchived")]
    return items


def _container(svc, kind: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    versions = sorted(entry["versions"].values(), key=lambda v: v["systemData"]["createdAt"])
    latest = versions[-1]["name"] if versions else None
    props = {"description": entry.get("description"), "tags": entry.get("tags") or {}, "properties": {},
             "isArchived": bool(entry.get("isArchived")), "latestVersion": latest,
             "nextVersion": str(int(latest) + 1) if latest and latest.isdigit() else None,
             "provisioningState": "Succeeded"}
    if kind == "components":
        props["nextVersion"] = component_spec.timestamp_version(svc.clock.now())
    return {"id": f"{ws_prefix(svc.cfg)}/{kind}/{name}", "name": name, "type": f"{MLS}/workspaces/{kind}",
            "properties": props, "systemData": system_data(entry.get("created", 0.0), entry.get("created", 0.0))}


def _server_fields(svc, kind: str, name: str, version: str, props: dict[str, Any]) -> None:
    """What the service fills in on a new version (the examples' response bodies)."""
    props.setdefault("description", None)
    props.setdefault("tags", {})
    props.setdefault("properties", {})
    props.setdefault("isAnonymous", False)
    props.setdefault("isArchived", False)
    props["provisioningState"] = "Succeeded"
    if kind == "environments":
        props.setdefault("environmentType", "UserCreated")
        props.setdefault("osType", "Linux")
        props.setdefault("autoRebuild", "Disabled")
        props.setdefault("image", None)
        props.setdefault("condaFile", None)
        props.setdefault("build", None)
        props.setdefault("inferenceConfig", None)
    if kind == "components":
        props.setdefault("autoDeleteSetting", None)
        props.setdefault("stage", "Logged" if props["isAnonymous"] else "Development")
        spec = props.setdefault("componentSpec", {})
        if isinstance(spec, dict):
            component_spec.normalise(spec, name, version)


def _check_component_refs(svc, props: dict[str, Any]) -> None:
    """A component naming workspace code or an environment that does not exist is refused."""
    spec = props.get("componentSpec") or {}
    for field in ("code", "environment"):
        check_reference(svc, spec.get(field), f"Component {field}")


def _interface_of_source_job(svc, spec: dict[str, Any]) -> None:
    """A pipeline component made from a job names one of this workspace's jobs."""
    job_id = spec.get("sourceJobId") or spec.get("source_job_id")
    if not isinstance(job_id, str):
        return
    job = svc.state["jobs"].get(job_id.rsplit("/", 1)[-1].lower())
    if job is None:
        raise ArmError(400, "UserError", f"The source job {job_id} of the pipeline component was not found in the "
                       "workspace.")
    component_spec.from_source_job(spec, job["properties"])


def _default_version(svc, name: str) -> dict[str, Any]:
    """A component's default version is its newest, addressed by the ``default`` label (the SDK's
    test_component_with_default_label expects an id ending ``/components/{name}/labels/default``)."""
    entry = assets(svc, "components").get(name)
    versions = sorted((entry or {}).get("versions", {}).values(), key=lambda v: v["systemData"]["createdAt"])
    if not versions:
        raise version_not_found("components", name, DEFAULT_COMPONENT_VERSION)
    body = copy.deepcopy(versions[-1])
    body["id"] = f"{ws_prefix(svc.cfg)}/components/{name}/labels/default"
    return body


_ARM_ASSET = re.compile(r"/workspaces/[^/]+/(codes|components|environments)/([^/]+)/versions/([^/]+)$", re.IGNORECASE)
# `azureml:name@default` reaches the service unresolved, as a label id (the SDK's orchestrator resolves no
# `default` label of a component); the service resolves it to the newest version when it accepts the job.
_ARM_LABEL = re.compile(r"/workspaces/[^/]+/components/([^/]+)/labels/([^/]+)$", re.IGNORECASE)


def is_curated(kind: str, name: str) -> bool:
    """Curated environments (``AzureML-...``) are in every workspace; the service accepted a job naming
    ``azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33`` (command_job__test_command_job_serverless.json)."""
    return kind == "environments" and name.startswith("AzureML-")


def _find_version_any_case(svc, kind: str, name: str, version: str) -> dict[str, Any] | None:
    """ARM resource names are case-insensitive: a job naming ``azureml:Train:31`` runs the component registered as
    ``train`` 31 (the SDK's test_pipeline_job_with_command_job reads the id back as sent, ``Train:31``)."""
    for key, entry in assets(svc, kind).items():
        if key.lower() == name.lower() and version in entry.get("versions", {}):
            return entry["versions"][version]
    return None


def check_reference(svc, ref: Any, where: str) -> None:
    label = _ARM_LABEL.search(ref) if isinstance(ref, str) else None
    if label and not (assets(svc, "components").get(label.group(1)) or {}).get("versions"):
        raise ArmError(400, "UserError", f"{where}: component {label.group(1)}@{label.group(2)} ({ref}) was not "
                       "found in the workspace.", detail_code="ComponentNotFound")
    m = _ARM_ASSET.search(ref) if isinstance(ref, str) else None
    if not m:
        return
    kind, name, version = m.group(1).lower(), m.group(2), m.group(3)
    if not is_curated(kind, name) and _find_version_any_case(svc, kind, name, version) is None:
        label = KINDS[kind]
        raise ArmError(400, "UserError", f"{where}: {label.lower()} {name}:{version} ({ref}) was not found in the "
                       "workspace.", detail_code=f"{label}NotFound")


def register(router: Router) -> None:
    for kind in KINDS:
        _register_kind(router, kind)

    @router.add("POST", WS + "/codes/{name}/versions/{version}/startPendingUpload", "codes.startPendingUpload")
    def start_pending_upload(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        from .datastores import SAS

        body = req.json() or {}
        upload_id = body.get("pendingUploadId") or str(uuid.uuid4())
        cfg = svc.cfg
        # each upload gets a container of its own, `{workspace id}-{26 random characters}` as recorded
        # (test_component_update_code), so two folders of the same name never share blobs
        container = f"{cfg.get('workspace_id', cfg['container'])[:36]}-{uuid.uuid4().hex[:26]}"
        blob_uri = f"https://{cfg['storage_account']}.blob.core.windows.net/{container}"
        account_id = (f"/subscriptions/{cfg['subscription_id']}/resourceGroups/{cfg['resource_group']}/providers/"
                      f"Microsoft.Storage/storageAccounts/{cfg['storage_account']}")
        return ok({"blobReferenceForConsumption": {"blobUri": blob_uri, "storageAccountArmId": account_id,
                                                   "credential": {"credentialType": "SAS",
                                                                  "sasUri": blob_uri + SAS}},
                   "pendingUploadId": upload_id, "pendingUploadType": body.get("pendingUploadType", "None")})


def _register_kind(router: Router, kind: str) -> None:
    label = KINDS[kind]

    @router.add("GET", WS + f"/{kind}", f"{kind}.list")
    def list_containers(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        items = [_container(svc, kind, n, e) for n, e in assets(svc, kind).items()]
        return ok({"value": _active(items, req.query)})

    @router.add("GET", WS + f"/{kind}/{{name}}", f"{kind}.get")
    def get_container(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc, kind).get(name)
        if entry is None:
            raise container_not_found(kind, name)
        return ok(_container(svc, kind, name, entry))

    @router.add("PUT", WS + f"/{kind}/{{name}}", f"{kind}.createContainer")
    def put_container(svc, req, sub, rg, ws, name):
        """Archive/restore of a whole container (and its description/tags)."""
        check_workspace(svc, sub, rg, ws)
        props = require_body(req).get("properties") or {}
        entry = assets(svc, kind).get(name)
        created = entry is None
        if created:
            entry = assets(svc, kind).setdefault(name, {"versions": {}, "created": svc.clock.now()})
        for field in ("description", "tags", "isArchived"):
            if field in props:
                entry[field] = props[field]
        if "isArchived" in props:
            for v in entry["versions"].values():
                v["properties"]["isArchived"] = bool(props["isArchived"])
        return ok(_container(svc, kind, name, entry), 201 if created else 200)

    @router.add("GET", WS + f"/{kind}/{{name}}/versions", f"{kind}.listVersions")
    def list_versions(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        q = req.query
        if kind == "codes" and q.get("hash"):
            items = [copy.deepcopy(v) for e in assets(svc, kind).values() for v in e["versions"].values()
                     if (v["properties"].get("properties") or {}).get("hash_sha256") == q["hash"]
                     and str((v["properties"].get("properties") or {}).get("hash_version")) ==
                     q.get("hashVersion", str((v["properties"].get("properties") or {}).get("hash_version")))]
            return ok({"value": items})
        entry = assets(svc, kind).get(name)
        if entry is None:
            raise container_not_found(kind, name)
        items = [copy.deepcopy(v) for v in entry["versions"].values()]
        if q.get("version"):
            items = [v for v in items if v["name"] == q["version"]]
        items = order_by_created(_active(items, q), q)
        return ok(paged(items, q))

    @router.add("GET", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.getVersion")
    def get_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        if kind == "components" and version == DEFAULT_COMPONENT_VERSION:
            return ok(_default_version(svc, name))
        v = find_version(svc, kind, name, version)
        if v is None:
            raise version_not_found(kind, name, version)
        return ok(copy.deepcopy(v))

    @router.add("PUT", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.createVersion")
    def put_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        props = copy.deepcopy(require_body(req).get("properties") or {})
        now = svc.clock.now()
        location = {"Location": svc.arm_url(req.path, req.api_version)}
        existing = find_version(svc, kind, name, version)
        if existing is not None:
            old = existing["properties"]
            changed = [f for f in CONTENT[kind] if f in props and props[f] != old.get(f)]
            if changed and not old.get("isAnonymous"):
                raise ArmError(409, "UserError", f"{label} {name}:{version} already exists with different "
                               f"{', '.join(changed)}; only {', '.join(MUTABLE)} can change.",
                               detail_code=f"{label}VersionInUse")
            for field in MUTABLE:
                if field in props:
                    old[field] = props[field]
            spec_field = MUTABLE_SPEC.get(kind)
            if spec_field and isinstance(props.get(spec_field), dict):
                if not old.get("isAnonymous"):
                    component_spec.check_update(name, old.get(spec_field) or {}, props[spec_field])
                component_spec.normalise(props[spec_field], name, version)
                old[spec_field] = props[spec_field]
            existing["systemData"]["lastModifiedAt"] = system_data(now)["lastModifiedAt"]
            return ok(copy.deepcopy(existing), 200, location)
        if kind == "components":
            _check_component_refs(svc, props)
            _interface_of_source_job(svc, props.get("componentSpec") or {})
        _server_fields(svc, kind, name, version, props)
        body = {"id": f"{ws_prefix(svc.cfg)}/{kind}/{name}/versions/{version}", "name": version,
                "type": f"{MLS}/workspaces/{kind}/versions", "properties": props, "systemData": system_data(now, now)}
        entry = assets(svc, kind).setdefault(name, {"versions": {}, "created": now})
        entry["versions"][version] = body
        return ok(copy.deepcopy(body), 201, location)

    @router.add("DELETE", WS + f"/{kind}/{{name}}/versions/{{version}}", f"{kind}.deleteVersion")
    def delete_version(svc, req, sub, rg, ws, name, version):
        check_workspace(svc, sub, rg, ws)
        entry = assets(svc, kind).get(name)
        if entry is None or entry["versions"].pop(version, None) is None:
            return EmuResponse.empty(204)
        return EmuResponse.empty(200)
