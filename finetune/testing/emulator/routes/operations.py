"""Status of long-running operations (compute and MFE styles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..clock import iso
from ..http import ArmError, EmuResponse
from .common import LOC, ok

if TYPE_CHECKING:
    from ..router import Router

# Status polls carry a small Retry-After: some SDK pollers otherwise wait a hard-coded 5 s between polls.
POLL_RETRY_AFTER = "0.01"


def _op(svc, op_id: str) -> dict:
    key = op_id.rsplit(":", 1)[-1]
    op = svc.state["operations"].get(key)
    if op is None:
        raise ArmError(404, "NotFound", f"Operation {op_id} was not found.")
    return op


def register(router: Router) -> None:
    @router.add("GET", LOC + "/computeOperationsStatus/{op_id}", "operations.computeStatus")
    def compute_status(svc, req, sub, loc, op_id):
        op = _op(svc, op_id)
        if not op["done"]:
            return ok({"status": "InProgress"}, headers={"Retry-After": POLL_RETRY_AFTER})
        if op["status"] == "Succeeded":
            return ok({"status": "Succeeded", "percentComplete": 100.0})
        return ok({"status": "Failed", "error": _error(op)})

    @router.add("GET", LOC + "/mfeOperationsStatus/{op_id}", "operations.mfeStatus")
    def mfe_status(svc, req, sub, loc, op_id):
        op = _op(svc, op_id)
        body = {
            "id": req.path,
            "name": op_id,
            "startTime": iso(op["start"]),
            "endTime": iso(op["end"]) if op["done"] else "0001-01-01T00:00:00+00:00",
            "percentComplete": 100.0 if op["done"] else 0.0,
            "status": op["status"] if op["done"] else "Updating" if op["kind"].endswith("update") else "InProgress",
        }
        if op["done"] and op["status"] != "Succeeded":
            body["error"] = _error(op)
        return ok(body, headers={} if op["done"] else {"Retry-After": POLL_RETRY_AFTER})

    @router.add("GET", LOC + "/mfeOperationsResults/{op_id}", "operations.mfeResults")
    def mfe_results(svc, req, sub, loc, op_id):
        op = _op(svc, op_id)
        if not op["done"]:
            return EmuResponse.empty(202, {"Location": svc.arm_url(req.path, req.api_version),
                                           "Retry-After": POLL_RETRY_AFTER})
        if op["status"] != "Succeeded":
            raise ArmError(400, _error(op)["code"], _error(op)["message"])
        return EmuResponse.empty(200)


def _error(op: dict) -> dict:
    err = op.get("error") or {"code": "InternalServerError", "message": "The operation failed."}
    return {"code": err.get("code", "UserError"), "message": err.get("message", "The operation failed.")}
