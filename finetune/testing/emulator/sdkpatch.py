"""Route the SDK's side channels, which ignore the MLClient transport, to in-process emulators.

1. Blob uploads: ``_blob_storage_helper`` builds its own ``BlobServiceClient`` (and, for code uploads to the SAS
   URI of ``startPendingUpload``, ``ContainerClient.from_container_url``); each emulator claims its own storage
   account host.
2. ``online_deployments.begin_create_or_update`` with a registry model calls ``get_registry_client`` without the
   transport (a registry discovery request to the real host); it gets the newest active emulator's transport.

Both are restored when the last emulator exits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import EmulatorService

_lock = threading.Lock()
_active: list[EmulatorService] = []
_original: Any = None
_original_registry: Any = None
_original_container: Any = None
_MODULE = "azure.ai.ml._artifacts._blob_storage_helper"
_REGISTRY_MODULE = "azure.ai.ml._utils._registry_utils"


def _service_for(account_url: str) -> EmulatorService | None:
    from urllib.parse import urlsplit

    host = (urlsplit(account_url).hostname or "").lower()
    for svc in reversed(_active):
        if svc.serves_host(host):
            return svc
    return None


def _make_patched(original: Any) -> Any:
    from .transport import EmulatorTransport

    class EmulatedBlobServiceClient(original):  # type: ignore[misc, valid-type]
        def __init__(self, account_url: str, credential: Any = None, **kwargs: Any) -> None:
            svc = _service_for(account_url)
            if svc is not None and "transport" not in kwargs:
                kwargs["transport"] = EmulatorTransport(svc)
                kwargs.setdefault("retry_total", 0)
            super().__init__(account_url, credential=credential, **kwargs)

    EmulatedBlobServiceClient.__name__ = "BlobServiceClient"
    return EmulatedBlobServiceClient


def _make_container_patched(original: Any) -> Any:
    from .transport import EmulatorTransport

    class EmulatedContainerClient(original):  # type: ignore[misc, valid-type]
        @classmethod
        def from_container_url(cls, container_url: str, credential: Any = None, **kwargs: Any) -> Any:
            svc = _service_for(container_url)
            if svc is not None and "transport" not in kwargs:
                kwargs["transport"] = EmulatorTransport(svc)
                kwargs.setdefault("retry_total", 0)
            return original.from_container_url(container_url, credential=credential, **kwargs)

    EmulatedContainerClient.__name__ = "ContainerClient"
    return EmulatedContainerClient


def _make_registry_patched(original: Any) -> Any:
    from .transport import EmulatorTransport

    def get_registry_client(credential: Any, registry_name: str, workspace_location: str | None = None,
                            **kwargs: Any) -> Any:
        if "transport" not in kwargs and _active:
            kwargs["transport"] = EmulatorTransport(_active[-1])
        return original(credential, registry_name, workspace_location, **kwargs)

    return get_registry_client


def activate(service: EmulatorService) -> None:
    global _original, _original_registry, _original_container
    import importlib

    with _lock:
        module = importlib.import_module(_MODULE)
        registry_module = importlib.import_module(_REGISTRY_MODULE)
        if not _active:
            _original = module.BlobServiceClient
            module.BlobServiceClient = _make_patched(_original)
            _original_container = module.ContainerClient
            module.ContainerClient = _make_container_patched(_original_container)
            _original_registry = registry_module.get_registry_client
            registry_module.get_registry_client = _make_registry_patched(_original_registry)
        _active.append(service)


def deactivate(service: EmulatorService) -> None:
    global _original, _original_registry, _original_container
    import importlib

    with _lock:
        if service in _active:
            _active.remove(service)
        if not _active and _original is not None:
            module = importlib.import_module(_MODULE)
            module.BlobServiceClient = _original
            _original = None
            module.ContainerClient = _original_container
            _original_container = None
            registry_module = importlib.import_module(_REGISTRY_MODULE)
            registry_module.get_registry_client = _original_registry
            _original_registry = None


def original_blob_service_client() -> Any:
    """The class the SDK module holds when no emulator is active (for tests of the restore)."""
    return _original
