"""Datastores and listSecrets.

Secrets sent on PUT are kept apart from the datastore body and never returned by GET or list (examples
Datastore/AzureBlobWAccountKey/createOrUpdate.json, Datastore/get.json). listSecrets answers the stored secret
(Datastore/listSecrets.json: ``{"secretsType": "AccountKey", "key"}``), except that an account-key store asked for an
expirable secret (``{"expirableSecret": true}``, what the SDK sends) answers a SAS, as recorded in
datastore__test_blob_store.json.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..http import ArmError
from ..state import system_data, ws_prefix
from .common import WS, check_workspace, ok, require_body

if TYPE_CHECKING:
    from ..router import Router

SAS = "?sv=2021-08-06&ss=b&srt=co&sp=rwdlacup&se=2099-01-01T00%3A00%3A00Z&sig=ZmluZXR1bmUtZW11bGF0b3I%3D"


def secret_store(svc) -> dict[str, dict]:
    return svc.state.setdefault("datastore_secrets", {})  # older persisted states have none


def register(router: Router) -> None:
    @router.add("GET", WS + "/datastores", "datastores.list")
    def list_datastores(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        items = [copy.deepcopy(d) for d in svc.state["datastores"].values()]
        if req.query.get("isDefault", "").lower() == "true":
            items = [d for d in items if d["properties"].get("isDefault")]
        return ok({"value": items})

    @router.add("GET", WS + "/datastores/{name}", "datastores.get")
    def get_datastore(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        d = svc.state["datastores"].get(name)
        if d is None:
            raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="DatastoreNotFound",
                           detail_message=f"Datastore with name: {name} not found.")
        return ok(copy.deepcopy(d))

    @router.add("PUT", WS + "/datastores/{name}", "datastores.create")
    def put_datastore(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        body = require_body(req)
        props = copy.deepcopy(body.get("properties") or {})
        creds = props.get("credentials") or {"credentialsType": "None"}
        props["credentials"] = {k: v for k, v in creds.items() if k != "secrets"}
        props["credentials"].setdefault("credentialsType", "None")
        props.setdefault("isDefault", False)
        for field in ("description", "tags", "properties", "subscriptionId", "resourceGroup"):
            props.setdefault(field, None)
        props.setdefault("endpoint", "core.windows.net")
        props.setdefault("protocol", "https")
        props.setdefault("serviceDataAccessAuthIdentity", "None")
        existing = name in svc.state["datastores"]
        now = svc.clock.now()
        d = {"id": f"{ws_prefix(svc.cfg)}/datastores/{name}", "name": name,
             "type": "Microsoft.MachineLearningServices/workspaces/datastores", "properties": props,
             "systemData": system_data(now)}
        svc.state["datastores"][name] = d
        secrets = creds.get("secrets")
        if secrets:
            secret_store(svc)[name] = copy.deepcopy(secrets)
        elif not existing or props["credentials"]["credentialsType"] == "None":
            secret_store(svc).pop(name, None)
        return ok(copy.deepcopy(d), 200 if existing else 201, {"Location": svc.arm_url(req.path, req.api_version)})

    @router.add("DELETE", WS + "/datastores/{name}", "datastores.delete")
    def delete_datastore(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        from ..http import EmuResponse

        secret_store(svc).pop(name, None)
        return EmuResponse.empty(200 if svc.state["datastores"].pop(name, None) else 204)

    @router.add("POST", WS + "/datastores/{name}/listSecrets", "datastores.listSecrets")
    def list_secrets(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        ds = svc.state["datastores"].get(name)
        if ds is None:
            raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="DatastoreNotFound")
        kind = ds["properties"]["credentials"].get("credentialsType")
        expirable = bool((req.json() or {}).get("expirableSecret"))
        stored = secret_store(svc).get(name)
        if kind == "AccountKey" and (expirable or stored is None):
            return ok({"secretsType": "Sas", "sasToken": SAS})
        if stored is None:
            raise ArmError(400, "UserError", f"Datastore {name} has no secrets (credentials type {kind}).",
                           detail_code="DatastoreHasNoSecrets")
        return ok(copy.deepcopy(stored))
