"""Time-driven transitions: long-running operations finishing, jobs moving through their phases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clock import iso
from .outputs import register_named_outputs

if TYPE_CHECKING:
    from .service import EmulatorService

JOB_TERMINAL = ("Completed", "Failed", "Canceled")


def start_operation(
    svc: EmulatorService,
    kind: str,
    target: dict[str, str],
    duration: float,
    *,
    api_version: str | None,
    final: str = "Succeeded",
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record an async operation; ``duration`` is simulated seconds (slow faults already applied)."""
    now = svc.clock.now()
    op_id = svc.next_id("op")
    op = {
        "id": op_id,
        "kind": kind,
        "target": target,
        "start": now,
        "end": now + duration,
        "status": "InProgress",
        "final": final,
        "error": error,
        "api_version": api_version,
        "done": False,
    }
    svc.state["operations"][op_id] = op
    if duration <= 0:
        _finish(svc, op)
    return op


def slow_factor(svc: EmulatorService, operation: str, path: str, base: float) -> float:
    from .faults import ASYNC_KINDS  # noqa: F401  (documented there)

    fault = svc.faults.take(operation, path, {"slow"})
    if fault is None:
        return base
    if "seconds" in fault.params:
        return float(fault.params["seconds"])
    return base * float(fault.params.get("factor", 10))


def tick(svc: EmulatorService, now: float) -> None:
    ops = sorted((o for o in svc.state["operations"].values() if not o["done"]), key=lambda o: o["end"])
    for op in ops:
        if op["end"] <= now:
            _finish(svc, op)
    for job in svc.state["jobs"].values():
        _advance_job(svc, job, now)


def _finish(svc: EmulatorService, op: dict[str, Any]) -> None:
    op["done"] = True
    op["status"] = op["final"]
    kind, t = op["kind"], op["target"]
    end = op["end"]
    st = svc.state
    if kind == "compute.create":
        c = st["computes"].get(t["name"].lower())
        if c:
            props = c["properties"]
            props["provisioningState"] = op["final"]
            props["modifiedOn"] = iso(end)
            if op["final"] == "Succeeded":
                inner = props.setdefault("properties", {})
                inner.update({"allocationState": "Steady", "currentNodeCount": 0, "targetNodeCount": 0,
                              "nodeStateCounts": {"preparingNodeCount": 0, "runningNodeCount": 0, "idleNodeCount": 0,
                                                  "unusableNodeCount": 0, "leavingNodeCount": 0,
                                                  "preemptedNodeCount": 0},
                              "allocationStateTransitionTime": iso(end)})
                if props.get("computeType") == "ComputeInstance":
                    inner["state"] = "Running"
            else:
                props["provisioningErrors"] = [{"error": op["error"]}]
    elif kind == "compute.power":  # a compute instance's start/stop/restart (routes/compute_instance.py)
        c = st["computes"].get(t["name"].lower())
        if c:
            c["properties"].setdefault("properties", {})["state"] = t["state"]
    elif kind == "compute.delete":
        st["computes"].pop(t["name"].lower(), None)
    elif kind in ("endpoint.create", "endpoint.update"):
        ep = st["endpoints"].get(t["endpoint"].lower())
        if ep:
            props = ep["body"]["properties"]
            props["provisioningState"] = op["final"]
            if op["final"] == "Succeeded":
                loc = svc.cfg["location"]
                name = ep["body"]["name"]
                props["scoringUri"] = f"https://{name}.{loc}.inference.ml.azure.com/score"
                props["swaggerUri"] = f"https://{name}.{loc}.inference.ml.azure.com/swagger.json"
                if "pending_traffic" in ep:
                    props["traffic"] = ep.pop("pending_traffic")
            ep["body"]["systemData"]["lastModifiedAt"] = iso(end)
    elif kind == "endpoint.delete":
        st["endpoints"].pop(t["endpoint"].lower(), None)
    elif kind in ("deployment.create", "deployment.update"):
        ep = st["endpoints"].get(t["endpoint"].lower())
        dep = ep["deployments"].get(t["deployment"].lower()) if ep else None
        if dep:
            dep["properties"]["provisioningState"] = op["final"]
            dep["systemData"]["lastModifiedAt"] = iso(end)
            if op["final"] == "Failed" and op.get("error"):
                dep["emulator_logs"] = op["error"].get("logs", "")
    elif kind == "deployment.delete":
        ep = st["endpoints"].get(t["endpoint"].lower())
        if ep:
            ep["deployments"].pop(t["deployment"].lower(), None)
            traffic = ep["body"]["properties"].get("traffic") or {}
            for key in [k for k in traffic if k.lower() == t["deployment"].lower()]:
                traffic.pop(key)
    elif kind == "job.cancel":
        job = st["jobs"].get(t["name"].lower())
        if job and job["properties"]["status"] not in JOB_TERMINAL:
            job["properties"]["status"] = "Canceled"
            job["emulator"]["end"] = end


def job_phases(svc: EmulatorService, job: dict[str, Any]) -> list[tuple[str, float]]:
    """(status, starts_at) for a job submitted at ``emulator.created``."""
    d = svc.durations
    factor = job["emulator"].get("slow_factor", 1.0)
    t0 = job["emulator"]["created"]
    t1 = t0 + d.job_not_started * factor
    t2 = t1 + d.job_queued * factor
    t3 = t2 + d.job_running * factor
    return [("NotStarted", t0), ("Queued", t1), ("Running", t2), ("Completed", t3)]


def _advance_job(svc: EmulatorService, job: dict[str, Any], now: float) -> None:
    props = job["properties"]
    if props["status"] in JOB_TERMINAL:
        return
    meta = job["emulator"]
    if meta.get("cancel_requested"):
        return
    status = "NotStarted"
    for name, start in job_phases(svc, job):
        if now >= start:
            status = name
    if status == "Running" and meta.get("start") is None:
        meta["start"] = job_phases(svc, job)[2][1]
    if status == "Completed":
        end = job_phases(svc, job)[3][1]
        meta["start"] = meta.get("start") or job_phases(svc, job)[2][1]
        meta["end"] = end
        if meta.get("fail"):
            props["status"] = "Failed"
            meta["error"] = {"code": "UserError", "message": meta["fail"]["message"]}
            return
        props["status"] = "Completed"
        register_named_outputs(svc, job)
        return
    props["status"] = status
