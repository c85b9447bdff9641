"""The emulator's state: plain JSON-serializable dicts, seeded with a workspace and the ``azureml`` registry."""

from __future__ import annotations

import csv
import json
import secrets
import uuid
from importlib import resources
from typing import Any

import yaml

from .clock import DEFAULT_EPOCH, iso

SEED = "finetune.testing.emulator.seed"
ARM_HOST = "https://management.azure.com"
MLS = "Microsoft.MachineLearningServices"

# The container of the workspace's artifact store (``workspaceartifactstore``), where run history keeps each run's
# logs under ``ExperimentRun/dcid.<run id>/`` (recorded: test_pipeline_job_download, ..._child_run_download).
ARTIFACT_CONTAINER = "azureml"
ARTIFACT_STORE = "workspaceartifactstore"

REGISTRY_SUBSCRIPTION = "6c6683e9-e5fe-4038-8519-ce6ebec2ba15"
REGISTRY_RESOURCE_GROUP = "registry-builtin-prod-eastus-01"


def seed_text(name: str) -> str:
    return resources.files(SEED).joinpath(name).read_text(encoding="utf-8")


def stringify_tags(tags: dict[str, Any]) -> dict[str, str]:
    """azureml-assets ``stringify_dictionary``: json.dumps for dicts, str() for the rest."""
    return {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in (tags or {}).items()}


def new_state(
    subscription_id: str,
    resource_group: str,
    workspace_name: str,
    location: str,
    tenant_id: str,
    *,
    phi3_layout: str = "tags",
    now: float,
) -> dict[str, Any]:
    account = "emu" + secrets.token_hex(6)
    container = f"azureml-blobstore-{uuid.uuid4()}"
    cfg = {
        "subscription_id": subscription_id,
        "resource_group": resource_group,
        "workspace_name": workspace_name,
        "location": location,
        "tenant_id": tenant_id,
        "workspace_id": str(uuid.uuid4()),
        "storage_account": account,
        "container": container,
    }
    state: dict[str, Any] = {
        "format": 1,
        "config": cfg,
        "computes": {},
        "datastores": {},
        "jobs": {},
        "models": {},
        "data": {},
        "endpoints": {},
        "operations": {},
        "blobs": {},
        "quota": {},
        "registries": {"azureml": seed_registry(now, phi3_layout)},
        "counters": {"op": 0},
    }
    ds = datastore_body(cfg, "workspaceblobstore", now, is_default=True)
    state["datastores"]["workspaceblobstore"] = ds
    add_system_datastores(state, now)
    return state


def add_system_datastores(state: dict[str, Any], now: float) -> None:
    """The stores every workspace has besides its default one (older persisted states lack them)."""
    state["datastores"].setdefault(ARTIFACT_STORE, datastore_body(state["config"], ARTIFACT_STORE, now,
                                                                  container=ARTIFACT_CONTAINER, identity="None"))


def ws_prefix(cfg: dict[str, Any]) -> str:
    return (
        f"/subscriptions/{cfg['subscription_id']}/resourceGroups/{cfg['resource_group']}"
        f"/providers/{MLS}/workspaces/{cfg['workspace_name']}"
    )


def system_data(now: float, created: float | None = None) -> dict[str, Any]:
    return {
        "createdAt": iso(created if created is not None else now),
        "createdBy": "emulator@finetune.local",
        "createdByType": "User",
        "lastModifiedAt": iso(now),
        "lastModifiedBy": "emulator@finetune.local",
        "lastModifiedByType": "User",
    }


def workspace_body(cfg: dict[str, Any]) -> dict[str, Any]:
    sub, rg, loc = cfg["subscription_id"], cfg["resource_group"], cfg["location"]
    return {
        "id": ws_prefix(cfg),
        "name": cfg["workspace_name"],
        "type": f"{MLS}/workspaces",
        "location": loc,
        "tags": {},
        "etag": None,
        "kind": "Default",
        "sku": {"name": "Basic", "tier": "Basic"},
        "identity": {"type": "SystemAssigned", "principalId": str(uuid.UUID(int=1)), "tenantId": cfg["tenant_id"]},
        "systemData": system_data(DEFAULT_EPOCH),
        "properties": {
            "friendlyName": cfg["workspace_name"],
            "description": "",
            "storageAccount": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/"
            f"{cfg['storage_account']}",
            "keyVault": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Keyvault/vaults/kvemulator",
            "applicationInsights": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.insights/components/"
            "aiemulator",
            "containerRegistry": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/"
            "registries/cremulator",
            "hbiWorkspace": False,
            "tenantId": cfg["tenant_id"],
            "workspaceId": cfg["workspace_id"],
            "provisioningState": "Succeeded",
            "discoveryUrl": f"https://{loc}.api.azureml.ms/discovery",
            "mlFlowTrackingUri": f"azureml://{loc}.api.azureml.ms/mlflow/v1.0/subscriptions/{sub}/resourceGroups/{rg}"
            f"/providers/{MLS}/workspaces/{cfg['workspace_name']}",
            "v1LegacyMode": False,
            "publicNetworkAccess": "Enabled",
            "creationTime": "2026-01-01T00:00:00.0000000Z",
        },
    }


def datastore_body(cfg: dict[str, Any], name: str, now: float, *, is_default: bool = False,
                   container: str | None = None, identity: str = "WorkspaceSystemAssignedIdentity") -> dict[str, Any]:
    return {
        "id": f"{ws_prefix(cfg)}/datastores/{name}",
        "name": name,
        "type": f"{MLS}/workspaces/datastores",
        "properties": {
            "description": None,
            "tags": None,
            "properties": None,
            "isDefault": is_default,
            "credentials": {"credentialsType": "AccountKey"},
            "subscriptionId": cfg["subscription_id"],
            "resourceGroup": cfg["resource_group"],
            "datastoreType": "AzureBlob",
            "accountName": cfg["storage_account"],
            "containerName": container or cfg["container"],
            "endpoint": "core.windows.net",
            "protocol": "https",
            "serviceDataAccessAuthIdentity": identity,
        },
        "systemData": system_data(now),
    }


def registry_prefix(name: str) -> str:
    return (f"/subscriptions/{REGISTRY_SUBSCRIPTION}/resourceGroups/{REGISTRY_RESOURCE_GROUP}"
            f"/providers/{MLS}/registries/{name}")


def _registry_model_version(spec: dict[str, Any], version: str, created: float, registry: str = "azureml") -> dict:
    name = spec["name"]
    props = {k: str(v) for k, v in (spec.get("properties") or {}).items()}
    body = {
        # Registry model versions carry azureml:// ids; the SDK refuses ARM-style ids for registry models.
        "id": f"azureml://registries/{registry}/models/{name}/versions/{version}",
        "name": version,
        "type": f"{MLS}/registries/models/versions",
        "properties": {
            "description": f"{name} (seeded by the finetune emulator)",
            "tags": stringify_tags(spec.get("tags") or {}),
            "properties": props,
            "isAnonymous": False,
            "isArchived": False,
            "flavors": {"transformers": {"data": {"task": "chat-completion"}}},
            "modelType": "mlflow_model",
            "modelUri": f"azureml://registries/{registry}/models/{name}/versions/{version}",
            "jobName": None,
            "provisioningState": "Succeeded",
            "stage": None,
            "intellectualProperty": {"publisher": "Microsoft"},
        },
        "systemData": system_data(created, created),
    }
    if spec.get("system_metadata"):
        body["properties"]["systemMetadata"] = spec["system_metadata"]
    return body


def _component_version(spec: dict[str, Any], created: float, registry: str = "azureml") -> dict[str, Any]:
    name, version = spec["name"], str(spec["version"])
    return {
        "id": f"{registry_prefix(registry)}/components/{name}/versions/{version}",
        "name": version,
        "type": f"{MLS}/registries/components/versions",
        "properties": {
            "description": spec.get("description"),
            "tags": stringify_tags(spec.get("tags") or {}),
            "properties": {},
            "isAnonymous": False,
            "isArchived": False,
            "componentSpec": spec,
            "provisioningState": "Succeeded",
            "stage": None,
        },
        "systemData": system_data(created, created),
    }


def seed_registry(now: float, phi3_layout: str = "tags") -> dict[str, Any]:
    if phi3_layout not in ("tags", "system_metadata"):
        raise ValueError("phi3_layout must be 'tags' or 'system_metadata'")
    day = 86400.0
    models: dict[str, dict[str, Any]] = {}

    def add(spec: dict[str, Any], version: str, created: float) -> None:
        entry = models.setdefault(spec["name"], {"versions": {}})
        entry["versions"][version] = _registry_model_version(spec, version, created)

    tags_spec = yaml.safe_load(seed_text("phi-3-mini-4k-instruct.tags.yaml"))
    new_spec = yaml.safe_load(seed_text("phi-3-mini-4k-instruct.system-metadata.yaml"))
    add(tags_spec, "13", now - 300 * day)
    add(tags_spec, "14", now - 200 * day)
    add(new_spec if phi3_layout == "system_metadata" else tags_spec, "15", now - 100 * day)
    for fname in ("phi-3-mini-128k-instruct.tags.yaml", "phi-3.5-mini-instruct.tags.yaml"):
        spec = yaml.safe_load(seed_text(fname))
        add(spec, str(spec["version"]), now - 100 * day)

    components: dict[str, dict[str, Any]] = {}
    for i, fname in enumerate(("chat_completion_pipeline-0.0.81.yaml", "chat_completion_pipeline-0.0.82.yaml")):
        spec = yaml.safe_load(seed_text(fname))
        entry = components.setdefault(spec["name"], {"versions": {}})
        entry["versions"][str(spec["version"])] = _component_version(spec, now - (50 - i * 10) * day)
    return {"models": models, "components": components}


def vm_sizes() -> list[dict[str, Any]]:
    """The region's whole vmSizes list (GPU and CPU sizes) from the catalog's data file, in the REST shape: the
    catalog's own fields (under `finetune`) are not part of what Azure answers."""
    from finetune.catalog import vm_sizes_document

    return [{k: v for k, v in size.items() if k != "finetune" and v is not None}
            for size in vm_sizes_document()["value"]]


def managed_online_skus() -> dict[str, dict[str, str]]:
    rows = csv.DictReader(seed_text("managed-online-endpoints-skus.csv").splitlines())
    return {r["vm_size_name"].lower(): r for r in rows}
