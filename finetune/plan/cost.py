"""Cost estimate from the catalog's approximate list prices (eastus, Linux, on-demand)."""

from __future__ import annotations

from typing import Any

from finetune import catalog
from finetune.spec.models import Spec, TargetKind

HOURS_PER_DAY = 24


def estimate_cost(spec: Spec) -> dict[str, Any]:
    if spec.target.kind is not TargetKind.AZUREML:
        return {"currency": "USD", "training_per_hour": 0.0, "endpoint_per_hour": 0.0, "endpoint_per_day": 0.0,
                "items": [], "notes": ["local target: runs on this machine, no cloud cost"]}
    items: list[dict[str, Any]] = []
    notes = ["approximate list prices (eastus, Linux, on-demand) from the offline catalog; your prices may differ"]
    training = None
    if spec.compute is not None:
        sku = catalog.find_sku(spec.compute.sku)
        nodes = spec.finetune.num_nodes
        price = sku.usd_per_hour if sku else None
        training = price * nodes if price is not None else None
        items.append({"what": "training", "sku": spec.compute.sku, "count": nodes, "unit": "node",
                      "usd_per_hour": training, "when": "while the fine-tuning job runs"})
        if price is None:
            notes.append(f"no price known for {spec.compute.sku}")
        if spec.compute.min_instances:
            idle = (price or 0) * spec.compute.min_instances
            items.append({"what": "idle cluster nodes", "sku": spec.compute.sku, "count": spec.compute.min_instances,
                          "unit": "node", "usd_per_hour": idle if price is not None else None,
                          "when": "always (min_instances > 0)"})
    endpoint_hour: float | None = 0.0
    for deployment in (spec.endpoint.deployments if spec.endpoint else []):
        sku = catalog.find_sku(deployment.sku or "")
        price = sku.usd_per_hour if sku else None
        cost = price * deployment.instance_count if price is not None else None
        items.append({"what": f"deployment {deployment.name}", "sku": deployment.sku, "count":
                      deployment.instance_count, "unit": "instance", "usd_per_hour": cost,
                      "when": "until destroyed"})
        if cost is None:
            endpoint_hour = None
            notes.append(f"no price known for {deployment.sku}")
        elif endpoint_hour is not None:
            endpoint_hour += cost
    return {
        "currency": "USD", "training_per_hour": training, "endpoint_per_hour": endpoint_hour,
        "endpoint_per_day": endpoint_hour * HOURS_PER_DAY if endpoint_hour is not None else None,
        "items": items, "notes": notes,
    }
