"""Route the SDK's own blob uploads (it builds a BlobServiceClient without the MLClient transport) to emulators.

One patch serves every active in-process emulator: each claims its own storage account host. The original
class is restored when the last emulator exits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import EmulatorService

_lock = threading.Lock()
_active: list[EmulatorService] = []
_original: Any = None
_MODULE = "azure.ai.ml._artifacts._blob_storage_helper"


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


def activate(service: EmulatorService) -> None:
    global _original
    import importlib

    with _lock:
        module = importlib.import_module(_MODULE)
        if not _active:
            _original = module.BlobServiceClient
            module.BlobServiceClient = _make_patched(_original)
        _active.append(service)


def deactivate(service: EmulatorService) -> None:
    global _original
    import importlib

    with _lock:
        if service in _active:
            _active.remove(service)
        if not _active and _original is not None:
            module = importlib.import_module(_MODULE)
            module.BlobServiceClient = _original
            _original = None


def original_blob_service_client() -> Any:
    """The class the SDK module holds when no emulator is active (for tests of the restore)."""
    return _original
