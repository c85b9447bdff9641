"""THE one place that builds azure-ai-ml ``MLClient`` objects (workspace and registry).

Everything in finetune that talks to Azure ML gets its clients here, so tests and rehearsals can inject a
transport/credential (e.g. ``finetune.testing.AzureMLEmulator``) and nothing else needs to know.

Environment:
- ``FINETUNE_AZUREML_POLLING_INTERVAL``: seconds between long-running-operation polls (default: the SDK's).
- ``AZUREML_CURRENT_CLOUD``: the SDK reads (and writes) it; the factory sets it once, before the first client, and
  never removes it (removing it raced with other threads reading os.environ).

Retries live here, once: every client the SDK builds from MLClient's keyword arguments (the ARM management clients
that also poll long-running operations, the workspace/model/dataset/run-history data-plane clients, registry
discovery, and the pipeline that scores endpoints) gets azure-core's ``RetryPolicy`` with :class:`RetrySettings`.
It retries 408/429/500/502/503/504 and connection errors with exponential backoff and honours ``Retry-After``
(GET/PUT/DELETE always; POST and PATCH on 500/503/504 or whenever the service sends ``Retry-After``, as Azure does
with 429). finetune's own ``errors.call`` does not retry; it only turns what is left into a diagnosis.
- Standard azure-core / requests variables apply unchanged: ``HTTPS_PROXY`` / ``NO_PROXY`` route traffic through
  a proxy (this is how ``python -m finetune.testing.emulator serve`` is targeted), ``REQUESTS_CA_BUNDLE`` trusts a
  private CA, and ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` select
  DefaultAzureCredential's environment credential.

``azure.ai.ml`` and ``azure.identity`` are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

POLLING_ENV = "FINETUNE_AZUREML_POLLING_INTERVAL"
CLOUD_ENV = "AZUREML_CURRENT_CLOUD"
_cloud_lock = threading.Lock()


@dataclass(frozen=True)
class RetrySettings:
    """azure-core ``RetryPolicy`` settings for every request an MLClient makes (see the module docstring).

    ``status`` must outlast a burst of throttling: 3 x 429 then 3 x 503 on one request still succeeds. Without
    ``Retry-After`` the waits are 0, 2 x backoff_factor, 4 x backoff_factor, ... capped at ``backoff_max``.
    """

    total: int = 10
    status: int = 7
    connect: int = 3
    read: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 30.0

    def kwargs(self) -> dict[str, Any]:
        from azure.core.pipeline.policies import RetryMode

        return {"retry_total": self.total, "retry_status": self.status, "retry_connect": self.connect,
                "retry_read": self.read, "retry_backoff_factor": self.backoff_factor,
                "retry_backoff_max": self.backoff_max, "retry_mode": RetryMode.Exponential}


@dataclass(frozen=True)
class ClientOptions:
    """Injection seam: ``transport`` (azure-core HttpTransport), ``credential`` (TokenCredential), polling,
    and the retry settings (tests shorten the backoff)."""

    credential: Any = None
    transport: Any = None
    polling_interval: float | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)


_defaults: list[ClientOptions] = []


@contextmanager
def default_options(options: ClientOptions) -> Iterator[None]:
    """Use `options` for every client built inside the block that is not given options of its own.

    The seam for in-process rehearsals and tests: a transport (and credential) for a whole CLI invocation.
    """
    _defaults.append(options)
    try:
        yield
    finally:
        _defaults.remove(options)


@functools.cache
def default_credential() -> Any:
    """One DefaultAzureCredential per process: it caches tokens, so every client shares them."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _pin_cloud() -> None:
    """Set AZUREML_CURRENT_CLOUD once, to the cloud the SDK would choose, before any client is built.

    MLClient writes this variable every time it is built; with it already set, those writes only replace a value
    (harmless to threads iterating os.environ). It is never removed: deleting a key while another thread iterates
    os.environ (requests does, for proxies) raised KeyError there.
    """
    if os.environ.get(CLOUD_ENV):
        return
    with _cloud_lock:
        if not os.environ.get(CLOUD_ENV):
            from azure.ai.ml._azure_environments import _get_default_cloud_name

            os.environ[CLOUD_ENV] = _get_default_cloud_name()


def _own_pipelines(ml: Any) -> Any:
    """Keep the client's plain HTTP pipeline (endpoint scoring, discovery) on the factory's retry policy.

    azure-ai-ml derives pipelines from it with ``with_policies(retry_policy=<3 retries>)`` (workspace discovery
    before each job submission, job log downloads); that re-links the policy objects the two pipelines share, so
    afterwards the original pipeline silently retried with the SDK's policy, and threads sending through it saw
    the chain change under them. Here a derived pipeline is built from fresh policies and the factory's settings.
    """
    pipeline = getattr(ml, "_requests_pipeline", None)
    settings = dict(getattr(ml, "_kwargs", None) or {})
    if pipeline is None or not hasattr(pipeline, "with_policies"):
        return ml
    cls = type(pipeline)

    def with_policies(**overrides: Any) -> Any:
        overrides.pop("retry_policy", None)
        overrides.pop("config", None)
        overrides.setdefault("transport", getattr(pipeline, "_transport", None) or settings.get("transport"))
        return cls(**{**settings, **overrides})

    pipeline.with_policies = with_policies
    return ml


def resolve_credential(options: ClientOptions | None = None) -> Any:
    """The credential the clients of these options sign with (the MLflow metrics reader signs with it too)."""
    opts = options or (_defaults[-1] if _defaults else ClientOptions())
    return opts.credential or default_credential()


def _resolve(options: ClientOptions | None, credential: Any, transport: Any, polling_interval: float | None
             ) -> tuple[Any, dict[str, Any]]:
    opts = options or (_defaults[-1] if _defaults else ClientOptions())
    cred = credential or resolve_credential(opts)
    # No SDK progress bars or "Check: ..." chatter: finetune reports progress itself.
    kwargs: dict[str, Any] = {"enable_telemetry": False, "show_progress": False, **opts.retry.kwargs()}
    chosen_transport = transport or opts.transport
    if chosen_transport is not None:
        kwargs["transport"] = chosen_transport
    interval = polling_interval if polling_interval is not None else opts.polling_interval
    if interval is None and os.environ.get(POLLING_ENV):
        interval = float(os.environ[POLLING_ENV])
    if interval is not None:
        kwargs["polling_interval"] = interval
    return cred, kwargs


def make_workspace_client(
    subscription_id: str,
    resource_group: str,
    workspace_name: str,
    *,
    options: ClientOptions | None = None,
    credential: Any = None,
    transport: Any = None,
    polling_interval: float | None = None,
) -> Any:
    """An MLClient for one workspace."""
    from azure.ai.ml import MLClient

    cred, kwargs = _resolve(options, credential, transport, polling_interval)
    _pin_cloud()
    return _shared(("workspace", subscription_id, resource_group, workspace_name), cred, kwargs, lambda: _own_pipelines(
        MLClient(cred, subscription_id, resource_group, workspace_name, **kwargs)))


def make_registry_client(
    registry_name: str,
    *,
    options: ClientOptions | None = None,
    credential: Any = None,
    transport: Any = None,
    polling_interval: float | None = None,
) -> Any:
    """An MLClient for a registry such as ``azureml`` (makes one discovery request)."""
    from azure.ai.ml import MLClient

    cred, kwargs = _resolve(options, credential, transport, polling_interval)
    _pin_cloud()
    return _shared(("registry", registry_name), cred, kwargs, lambda: _own_pipelines(
        MLClient(cred, registry_name=registry_name, **kwargs)))


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def _shared(name: tuple, cred: Any, kwargs: dict[str, Any], build: Any) -> Any:
    """One client per workspace or registry and settings in a process: building one costs ~10-15 ms of CPU (and a
    discovery request for registries), which a folder of specs would pay once per spec. Clients are thread-safe;
    the cache holds the credential and transport it keys on, so their ids cannot be reused while it does."""
    key = (*name, id(cred), tuple(sorted((k, v if isinstance(v, int | float | str | bool | None) else id(v))
                                         for k, v in kwargs.items())))
    with _clients_lock:
        found = _clients.get(key)
    if found is None:
        built = build()
        with _clients_lock:
            found = _clients.setdefault(key, built)
    return found
