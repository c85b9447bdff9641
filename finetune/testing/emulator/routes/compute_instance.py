"""Compute instance power actions: start, stop, restart, and the instance's ``state``.

Source: examples/2025-12-01/Compute/{start,stop,restart}.json (POST .../computes/{name}/{action} -> 202 with
``Azure-AsyncOperation`` to computeOperationsStatus) and the ComputeInstanceState enum (Running, Stopped, Starting,
Stopping, Restarting, ...). The state moves at once to the action's transition state and to its end state when the
operation completes (lifecycle ``compute.power``); the SDK's e2e test reads Running after create (lifecycle
``compute.create``) and Stopped after stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..http import ArmError, EmuResponse
from ..lifecycle import start_operation
from .common import WS, check_workspace
from .compute import compute_status_url

if TYPE_CHECKING:
    from ..router import Router

ACTIONS = {"start": ("Starting", "Running"), "stop": ("Stopping", "Stopped"), "restart": ("Restarting", "Running")}
ACTION_SECONDS = 60.0  # simulated


def _instance(svc, name: str) -> dict[str, Any]:
    c = svc.state["computes"].get(name.lower())
    if c is None:
        raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="ComputeNotFound",
                       detail_message=f"Compute {name} not found.")
    if c["properties"].get("computeType") != "ComputeInstance":
        raise ArmError(400, "UserError", f"Compute {name} is not a compute instance; only compute instances can be "
                       "started, stopped or restarted.", detail_code="BadArgument")
    return c


def register(router: Router) -> None:
    for action, (during, end) in ACTIONS.items():
        _register_action(router, action, during, end)


def _register_action(router: Router, action: str, during: str, end: str) -> None:
    @router.add("POST", WS + f"/computes/{{name}}/{action}", f"computes.{action}")
    def power(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        c = _instance(svc, name)
        op = start_operation(svc, "compute.power", {"name": name, "state": end}, ACTION_SECONDS,
                             api_version=req.api_version)
        c["properties"].setdefault("properties", {})["state"] = during
        url = compute_status_url(svc, op["id"], req.api_version)
        return EmuResponse.empty(202, {"Azure-AsyncOperation": url, "Location": url})
