"""THE one place that builds azure-ai-ml ``MLClient`` objects (workspace and registry).

Everything in finetune that talks to Azure ML gets its clients here, so tests and rehearsals can inject a
transport/credential (e.g. ``finetune.testing.AzureMLEmulator``) and nothing else needs to know.

Environment:
- ``FINETUNE_AZUREML_POLLING_INTERVAL``: seconds between long-running-operation polls (default: the SDK's).
- Standard azure-core / requests variables apply unchanged: ``HTTPS_PROXY`` / ``NO_PROXY`` route traffic through
  a proxy (this is how ``python -m finetune.testing.emulator serve`` is targeted), ``REQUESTS_CA_BUNDLE`` trusts a
  private CA, and ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` select
  DefaultAzureCredential's environment credential.

``azure.ai.ml`` and ``azure.identity`` are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

POLLING_ENV = "FINETUNE_AZUREML_POLLING_INTERVAL"
_SDK_ENV_WRITES = ("AZUREML_CURRENT_CLOUD",)


@dataclass(frozen=True)
class ClientOptions:
    """Injection seam: ``transport`` (azure-core HttpTransport), ``credential`` (TokenCredential), polling."""

    credential: Any = None
    transport: Any = None
    polling_interval: float | None = None


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


def default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


@contextmanager
def _sdk_env_isolated() -> Iterator[None]:
    """The SDK writes AZUREML_CURRENT_CLOUD into os.environ while building clients; undo that."""
    saved = {k: os.environ.get(k) for k in _SDK_ENV_WRITES}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _resolve(options: ClientOptions | None, credential: Any, transport: Any, polling_interval: float | None
             ) -> tuple[Any, dict[str, Any]]:
    opts = options or (_defaults[-1] if _defaults else ClientOptions())
    cred = credential or opts.credential or default_credential()
    # No SDK progress bars or "Check: ..." chatter: finetune reports progress itself.
    kwargs: dict[str, Any] = {"enable_telemetry": False, "show_progress": False}
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
    with _sdk_env_isolated():
        return MLClient(cred, subscription_id, resource_group, workspace_name, **kwargs)


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
    with _sdk_env_isolated():
        return MLClient(cred, registry_name=registry_name, **kwargs)
