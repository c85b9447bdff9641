"""``AzureMLEmulator``: the in-process entry point tests and users hold."""

from __future__ import annotations

import os
from typing import Any

from .clock import Durations
from .credential import DEFAULT_TENANT, EmulatorCredential
from .faults import FaultInjector
from .requestlog import RequestRecord
from .service import EmulatorService


class AzureMLEmulator:
    """A faithful, stateful Azure ML REST emulator for the real azure-ai-ml SDK.

    Usage::

        with AzureMLEmulator() as emu:
            ml = MLClient(emu.credential, emu.subscription_id, emu.resource_group, emu.workspace_name,
                          transport=emu.transport, polling_interval=0.01)

    ``acceleration``: simulated seconds per wall second (``0`` freezes time; use :meth:`advance`).
    ``durations``: simulated seconds per operation (see :class:`Durations`).
    ``phi3_layout``: tag layout of Phi-3-mini-4k-instruct version 15 in the ``azureml`` registry:
    ``"tags"`` (allow-list tags, as the seed notebook reads them) or ``"system_metadata"`` (the 2026 layout).
    ``state_dir``: persist state there (and reload it if present).
    """

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
        latency: float = 0.0,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.service = EmulatorService(
            subscription_id=subscription_id, resource_group=resource_group, workspace_name=workspace_name,
            location=location, tenant_id=tenant_id, acceleration=acceleration, durations=durations,
            phi3_layout=phi3_layout, state_dir=state_dir,
        )
        self.service.latency = latency
        self.credential = EmulatorCredential(tenant_id=self.service.cfg["tenant_id"])
        self._transport: Any = None
        self._active = False

    # ---- context manager ---------------------------------------------------------------------------------
    def __enter__(self) -> AzureMLEmulator:
        from . import sdkpatch

        sdkpatch.activate(self.service)
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        from . import sdkpatch

        sdkpatch.deactivate(self.service)
        self._active = False
        self.service.save()

    # ---- identity of the emulated workspace ------------------------------------------------------------
    @property
    def subscription_id(self) -> str:
        return self.service.cfg["subscription_id"]

    @property
    def resource_group(self) -> str:
        return self.service.cfg["resource_group"]

    @property
    def workspace_name(self) -> str:
        return self.service.cfg["workspace_name"]

    @property
    def location(self) -> str:
        return self.service.cfg["location"]

    @property
    def transport(self) -> Any:
        """An azure-core ``HttpTransport`` to pass to ``MLClient(..., transport=...)``."""
        if self._transport is None:
            from .transport import EmulatorTransport

            self._transport = EmulatorTransport(self.service)
        return self._transport

    def ml_client(self, *, registry_name: str | None = None, polling_interval: float = 0.01) -> Any:
        """Convenience: an MLClient for the emulated workspace (or ``registry_name``)."""
        from azure.ai.ml import MLClient

        if registry_name:
            return MLClient(self.credential, registry_name=registry_name, transport=self.transport,
                            polling_interval=polling_interval, enable_telemetry=False)
        return MLClient(self.credential, self.subscription_id, self.resource_group, self.workspace_name,
                        transport=self.transport, polling_interval=polling_interval, enable_telemetry=False)

    # ---- time ----------------------------------------------------------------------------------------------
    @property
    def clock(self):
        return self.service.clock

    @property
    def durations(self) -> Durations:
        return self.service.durations

    def advance(self, seconds: float) -> float:
        """Move simulated time forward (operations and jobs progress accordingly)."""
        return self.service.clock.advance(seconds)

    # ---- faults and latency --------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultInjector:
        return self.service.faults

    @property
    def latency(self) -> float:
        return self.service.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.service.latency = float(seconds)

    def set_quota(self, family: str, vcpus: int) -> None:
        """Set the dedicated-core quota of a VM family (e.g. ``"StandardNCADSA100v4Family"``)."""
        self.service.state["quota"][family.lower().replace(" ", "")] = int(vcpus)

    # ---- request log -----------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        return self.service.log.records

    def write_count(self) -> int:
        """Requests that changed state: PUT/PATCH/DELETE and state-changing POSTs (see ``requestlog``)."""
        return len(self.service.log.writes())

    def writes(self) -> list[RequestRecord]:
        return self.service.log.writes()

    def reset_log(self) -> None:
        self.service.log.reset()

    def operations(self) -> list[str]:
        """Operation names usable as fault targets."""
        return sorted({r.operation for r in self.service.router.routes})

    # ---- state inspection --------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        return self.service.state

    def job_status(self, name: str) -> str:
        with self.service.lock:
            from .artifacts import settle

            settle(self.service, self.clock.now())
            return self.service.state["jobs"][name.lower()]["properties"]["status"]

    def job_metrics(self, name: str) -> dict[str, dict[str, float]]:
        """The latest value of each metric the job's runs have logged so far, by run name (MLflow's view)."""
        from .runs import run_views

        self.job_status(name)
        with self.service.lock:
            views = run_views(self.service, self.service.state["jobs"][name.lower()], self.clock.now())
        return {v["info"]["run_name"]: {m["key"]: m["value"] for m in v["data"]["metrics"]} for v in views}

    def blob(self, path: str, container: str | None = None) -> bytes | None:
        """Content of a blob in the workspace's default container (or `container`), e.g.
        ``"LocalUpload/<hash>/train.jsonl"``; run logs are in the artifact store's container, ``"azureml"``."""
        from .routes.blob import get_blob_bytes

        return get_blob_bytes(self.service, container or self.service.cfg["container"], path)

    def blobs(self, container: str | None = None) -> list[str]:
        prefix = (container or self.service.cfg["container"]) + "/"
        return [k[len(prefix):] for k in self.service.state["blobs"] if k.startswith(prefix)]
