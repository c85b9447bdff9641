"""The emulator service: state + clock + faults + request log, and one ``handle(request)`` entry point.

Transports (in-process azure-core transport, the HTTPS server) turn their requests into :class:`EmuRequest`
and call :meth:`EmulatorService.handle`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from .clock import Durations, SimClock
from .credential import DEFAULT_TENANT
from .faults import SYNC_KINDS, WAIT_KINDS, FaultInjector
from .http import ArmError, EmuRequest, EmuResponse
from .requestlog import RequestLog, RequestRecord, classify_write
from .router import Router, call
from .state import ARM_HOST, add_system_datastores, new_state

ARM_PREFIX_HOSTS = ("management.azure.com",)
MFE_PREFIX = "/mferp/managementfrontend"


class UnknownHostError(Exception):
    """A request for a host the emulator does not serve (it never forwards to the real one)."""


class EmulatorService:
    def __init__(
        self,
        *,
        subscription_id: str = "00000000-0000-0000-0000-000000000000",
        resource_group: str = "finetune-emulator-rg",
        workspace_name: str = "finetune-emulator-ws",
        location: str = "eastus",
        tenant_id: str = DEFAULT_TENANT,
        acceleration: float = 10_000.0,
        durations: Durations | None = None,
        phi3_layout: str = "tags",
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.durations = durations or Durations()
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.latency = 0.0
        self.page_size: int | None = None  # workspace lists (assets, endpoints) page by this many; None: one page
        self.scoring_shape = "records"
        # Runs deeper below a pipeline than this carry no mlflow.rootRunId (None: every one does, as Azure ML sets
        # it; 1: the pipeline's nodes only, not the steps of a pipeline-component node).
        self.root_run_tag_depth: int | None = None
        self.state_dir = Path(state_dir) if state_dir else None
        loaded = self._load() if self.state_dir else None
        if loaded:
            self.state, clock_snap = loaded
            self.clock = SimClock.restore(clock_snap, acceleration)
            add_system_datastores(self.state, self.clock.now())
        else:
            self.clock = SimClock(acceleration)
            self.state = new_state(
                subscription_id, resource_group, workspace_name, location, tenant_id,
                phi3_layout=phi3_layout, now=self.clock.now(),
            )
        self.router = build_router()

    # ---- configuration shortcuts -------------------------------------------------------------------------
    @property
    def cfg(self) -> dict[str, Any]:
        return self.state["config"]

    def next_id(self, prefix: str = "op") -> str:
        self.state["counters"]["op"] += 1
        return f"{prefix}{self.state['counters']['op']:06d}"

    def arm_url(self, path: str, api_version: str | None, extra: str = "") -> str:
        q = f"?api-version={api_version or '2024-10-01-preview'}{extra}"
        return f"{ARM_HOST}{path}{q}"

    # ---- entry point ---------------------------------------------------------------------------------------
    def serves_host(self, host: str) -> bool:
        return _host_kind(host, self.cfg) is not None

    def handle(self, req: EmuRequest) -> EmuResponse:
        if self.latency:
            time.sleep(self.latency)
        kind = _host_kind(req.host, self.cfg)
        if kind is None:
            raise UnknownHostError(
                f"The Azure ML emulator does not serve host {req.host!r} ({req.method} {req.url}); "
                "requests never leave the emulator."
            )
        path = req.path
        if kind == "arm" and path.lower().startswith(MFE_PREFIX):
            path = path[len(MFE_PREFIX):]
        route_key = f"{kind}:{path}"
        found = self.router.match(req.method, route_key)
        operation = found[0].operation if found else "unknown"
        delay = self.faults.take(operation, req.path, WAIT_KINDS)
        if delay is not None:  # a slow answer holds this request only, never the others
            time.sleep(float(delay.params.get("seconds", 1.0)))
        with self.lock:
            now = self.clock.now()
            from .artifacts import settle

            settle(self, now)
            record = RequestRecord(
                method=req.method.upper(), url=req.url, host=req.host, path=req.path, query=dict(req.query),
                api_version=req.api_version, body=_body_for_log(req), operation=operation,
                headers={k: v for k, v in req.headers.items() if k != "authorization"},
            )
            try:
                if found is None:
                    if self.router.path_known(route_key):
                        raise ArmError(405, "MethodNotAllowed",
                                       f"The method {req.method} is not allowed for {req.path}.")
                    raise ArmError(404, "NotFound", f"The emulator has no route for {req.method} {req.path}.",
                                   detail_code="RouteNotFound")
                route, params = found
                fault = self.faults.take(operation, req.path, SYNC_KINDS)
                if fault is not None:
                    raise fault_error(fault, operation)
                resp = call(route, self, req, params)
            except ArmError as err:
                resp = err.to_response()
            record.status = resp.status
            record.is_write = classify_write(req.method, operation) and resp.status < 400
            self.log.append(record)
            if record.is_write and self.state_dir:
                self.save()
        resp.headers.setdefault("x-ms-request-id", record.operation)
        return resp

    # ---- persistence -----------------------------------------------------------------------------------------
    def save(self) -> None:
        if not self.state_dir:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        payload = {"state": self.state, "clock": self.clock.snapshot(), "faults": self.faults.to_dict()}
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self.state_dir / "state.json")

    def _load(self) -> tuple[dict[str, Any], dict[str, float]] | None:
        assert self.state_dir is not None
        f = self.state_dir / "state.json"
        if not f.exists():
            return None
        payload = json.loads(f.read_text())
        for fd in payload.get("faults", []):
            self.faults.add(fd["target"], fd["kind"], times=_remaining(fd), **fd["params"])
        return payload["state"], payload["clock"]


def _remaining(fd: dict[str, Any]) -> int | None:
    return None if fd["times"] is None else fd["times"] - fd["fired"]


def _body_for_log(req: EmuRequest) -> Any:
    if not req.body:
        return None
    parsed = req.json()
    if parsed is not None:
        return parsed
    return req.body if len(req.body) <= 4096 else req.body[:4096]


def _host_kind(host: str, cfg: dict[str, Any]) -> str | None:
    host = host.lower()
    if host in ARM_PREFIX_HOSTS or (host.startswith("cert-") and host.endswith(".experiments.azureml.net")):
        return "arm"
    if host.endswith(".api.azureml.ms"):
        return "api"
    if host == f"{cfg['storage_account']}.blob.core.windows.net":
        return "blob"
    if host.endswith(".inference.ml.azure.com"):
        return "scoring"
    if host == "login.microsoftonline.com":
        return "aad"
    if host in ("127.0.0.1", "localhost"):
        return "arm"
    return None


def fault_error(fault: Any, operation: str) -> ArmError:
    p = fault.params
    kind = fault.kind
    if kind == "throttle":
        ra = str(p.get("retry_after", 1))
        return ArmError(429, "TooManyRequests", p.get("message", "The request was throttled. Retry after a while."),
                        headers={"Retry-After": ra})
    if kind == "unavailable":
        ra = str(p.get("retry_after", 1))
        return ArmError(503, "ServiceUnavailable", p.get("message", "The service is temporarily unavailable."),
                        headers={"Retry-After": ra})
    if kind == "quota":
        return ArmError(
            400, "UserError",
            p.get("message", "Not enough quota available for the requested VM size in this region. "
                             "Current usage/limit: 0/0. Additional required: 24. Please request a quota increase."),
            detail_code="OutOfQuota",
        )
    if kind == "name_taken":
        return ArmError(
            409, "UserError",
            p.get("message", "An endpoint with this name already exists in this region. Endpoint names must be "
                             "unique per Azure region; choose a different name."),
            detail_code="EndpointNameAlreadyExists" if "Endpoint" in operation else "Conflict",
        )
    if kind == "sku_not_allowed":
        return ArmError(400, "UserError",
                        p.get("message", "The requested VM size is not allowed or not supported in this region."),
                        detail_code="SkuNotAllowed")
    return ArmError(int(p.get("status", 500)), p.get("code", "InternalServerError"),
                    p.get("message", "Injected error."), detail_code=p.get("detail_code"))


def build_router() -> Router:
    from .routes import register_all

    router = Router()
    register_all(router)
    return router
