"""Registry discovery and registry-scoped assets (models, components) of the seeded ``azureml`` registry."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..http import ArmError
from ..state import REGISTRY_RESOURCE_GROUP, REGISTRY_SUBSCRIPTION, registry_prefix
from .common import REG, ok, order_by_created, paged

if TYPE_CHECKING:
    from ..router import Router


def _registry(svc, reg: str) -> dict:
    r = svc.state["registries"].get(reg.lower()) or svc.state["registries"].get(reg)
    if r is None:
        raise ArmError(404, "UserError", f"Registry {reg} not found.", detail_code="RegistryNotFound")
    return r


def _asset(svc, reg: str, kind: str, name: str) -> dict:
    entry = _registry(svc, reg)[kind].get(name)
    if entry is None:
        label = "Model" if kind == "models" else "Component"
        raise ArmError(404, "UserError", "The specified resource was not found.", detail_code=f"{label}NotFound",
                       detail_message=f"{label} container with name: {name} not found.")
    return entry


def _container(reg: str, kind: str, name: str, entry: dict) -> dict:
    versions = sorted(entry["versions"].values(), key=lambda v: v["systemData"]["createdAt"])
    latest = versions[-1]
    return {
        "id": f"{registry_prefix(reg)}/{kind}/{name}",
        "name": name,
        "type": f"Microsoft.MachineLearningServices/registries/{kind}",
        "properties": {"description": latest["properties"].get("description"), "tags": {}, "properties": {},
                       "isArchived": False, "latestVersion": latest["name"], "nextVersion": None,
                       "provisioningState": "Succeeded"},
        "systemData": copy.deepcopy(versions[0]["systemData"]),
    }


def discovery_body(svc, reg: str) -> dict:
    loc = svc.cfg["location"]
    return {
        "registryId": "9a7ec7d3-3e3f-4e9b-b2b5-6f5a3a3d1c01",
        "registryName": reg,
        "tenantId": svc.cfg["tenant_id"],
        "primaryRegion": loc,
        "regions": [loc],
        "subscriptionId": REGISTRY_SUBSCRIPTION,
        "resourceGroup": REGISTRY_RESOURCE_GROUP,
        "workspaceName": None,
        "primaryRegionResourceProviderUri": f"https://cert-{loc}.experiments.azureml.net/",
        "registryFqdns": {loc: {"uri": f"https://{loc}.api.azureml.ms"}},
        "intellectualPropertyPublisher": None,
    }


def register(router: Router) -> None:
    @router.add("GET", "api:/registrymanagement/v1.0/registries/{reg}/discovery", "registries.discovery")
    def discovery(svc, req, reg):
        _registry(svc, reg)
        return ok(discovery_body(svc, reg))

    @router.add("GET", REG, "registries.get")
    def get_registry(svc, req, sub, rg, reg):
        _registry(svc, reg)
        loc = svc.cfg["location"]
        return ok({
            "id": registry_prefix(reg), "name": reg, "type": "Microsoft.MachineLearningServices/registries",
            "location": loc, "tags": {},
            "properties": {"discoveryUrl": f"https://{loc}.api.azureml.ms/registrymanagement/v1.0/registries/{reg}/discovery",
                           "intellectualPropertyPublisher": None, "managedResourceGroup": None,
                           "mlFlowRegistryUri": f"azureml://{loc}.api.azureml.ms/mlflow/v1.0/registries/{reg}",
                           "publicNetworkAccess": "Enabled",
                           "regionDetails": [{"location": loc, "acrDetails": [], "storageAccountDetails": []}]},
        })

    for kind in ("models", "components"):
        _register_kind(router, kind)


def _register_kind(router: Router, kind: str) -> None:
    single = kind[:-1]

    @router.add("GET", REG + f"/{kind}", f"registry.{kind}.list")
    def list_containers(svc, req, sub, rg, reg):
        r = _registry(svc, reg)
        return ok({"value": [_container(reg, kind, n, e) for n, e in r[kind].items()]})

    @router.add("GET", REG + f"/{kind}/{{name}}", f"registry.{kind}.get")
    def get_container(svc, req, sub, rg, reg, name):
        return ok(_container(reg, kind, name, _asset(svc, reg, kind, name)))

    @router.add("GET", REG + f"/{kind}/{{name}}/versions", f"registry.{kind}.listVersions")
    def list_versions(svc, req, sub, rg, reg, name):
        if kind == "models" and name not in _registry(svc, reg)[kind]:
            # Recorded (registry_discovery_and_registry_model__excerpt.json): a registry lists no versions of a
            # model it does not hold with 200 and an empty list, not 404.
            return ok({"value": []})
        entry = _asset(svc, reg, kind, name)
        items = [copy.deepcopy(v) for v in entry["versions"].values()]
        if req.query.get("version"):
            items = [v for v in items if v["name"] == req.query["version"]]
        items = order_by_created(items, req.query)
        return ok(paged(items, req.query))

    @router.add("GET", REG + f"/{kind}/{{name}}/versions/{{version}}", f"registry.{kind}.getVersion")
    def get_version(svc, req, sub, rg, reg, name, version):
        entry = _asset(svc, reg, kind, name)
        v = entry["versions"].get(version)
        if v is None:
            raise ArmError(404, "UserError", "The specified resource was not found.",
                           detail_code=f"{single.capitalize()}VersionNotFound",
                           detail_message=f"{single.capitalize()} {name} version {version} not found.")
        return ok(copy.deepcopy(v))
