"""Route the SDK's side channels, which ignore the MLClient transport, to in-process emulators.

1. Blob uploads: ``_blob_storage_helper`` builds its own ``BlobServiceClient`` (and, for code uploads to the SAS
   URI of ``startPendingUpload``, ``ContainerClient.from_container_url``); each emulator claims its own storage
   account host.
2. ``online_deployments.begin_create_or_update`` with a registry model calls ``get_registry_client`` without the
   transport (a registry discovery request to the real host); it gets the newest active emulator's transport.
3. MLflow's REST client (``mlflow.utils.request_utils``) sends with its own ``requests`` session: requests for a
   host an active emulator serves (the workspace's MLflow tracking host) are answered by it, others go on as usual.
   (In server mode nothing is patched: MLflow reaches the emulator through the HTTPS proxy like any client.)
   mlflow takes ~2.5 s to import, so it is patched when something imports it, not by activating an emulator.

Both are restored when the last emulator exits.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import EmulatorService

_lock = threading.Lock()
_active: list[EmulatorService] = []
_original: Any = None
_original_registry: Any = None
_original_container: Any = None
_original_mlflow_session: Any = None
_MODULE = "azure.ai.ml._artifacts._blob_storage_helper"
_REGISTRY_MODULE = "azure.ai.ml._utils._registry_utils"
_MLFLOW_MODULE = "mlflow.utils.request_utils"


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


def _make_registry_patched(original: Any) -> Any:
    from .transport import EmulatorTransport

    def get_registry_client(credential: Any, registry_name: str, workspace_location: str | None = None,
                            **kwargs: Any) -> Any:
        if "transport" not in kwargs and _active:
            kwargs["transport"] = EmulatorTransport(_active[-1])
        return original(credential, registry_name, workspace_location, **kwargs)

    return get_registry_client


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


def _make_mlflow_patched(original: Any) -> Any:
    import requests
    from requests.adapters import BaseAdapter

    from .transport import EmulatorAdapter

    class EmulatorFirst(BaseAdapter):
        """Emulated hosts to their emulator; every other request to MLflow's own adapter (retries and all)."""

        def __init__(self, fallback: Any) -> None:
            super().__init__()
            self.fallback = fallback

        def send(self, request: Any, **kwargs: Any) -> Any:
            svc = _service_for(str(request.url))
            return EmulatorAdapter(svc).send(request, **kwargs) if svc else self.fallback.send(request, **kwargs)

        def close(self) -> None:
            return None

    def get_request_session(*args: Any, **kwargs: Any) -> Any:
        session = original(*args, **kwargs)
        routed = requests.Session()
        for prefix in ("https://", "http://"):
            routed.mount(prefix, EmulatorFirst(session.get_adapter(prefix)))
        return routed

    return get_request_session


def _patch_mlflow(module: Any) -> None:
    global _original_mlflow_session
    with _lock:
        if _active and _original_mlflow_session is None:
            _original_mlflow_session = module._get_request_session
            module._get_request_session = _make_mlflow_patched(_original_mlflow_session)


def _unpatch_mlflow() -> None:
    global _original_mlflow_session
    module = sys.modules.get(_MLFLOW_MODULE)
    if module is not None and _original_mlflow_session is not None:
        module._get_request_session = _original_mlflow_session
    _original_mlflow_session = None


class _PatchMlflowOnImport(importlib.abc.MetaPathFinder):
    """Finds mlflow's request module as usual and patches it right after it has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _MLFLOW_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _patch_mlflow(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_finder = _PatchMlflowOnImport()


def activate(service: EmulatorService) -> None:
    global _original, _original_registry, _original_container

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
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
        _active.append(service)
    if _MLFLOW_MODULE in sys.modules:
        _patch_mlflow(sys.modules[_MLFLOW_MODULE])


def deactivate(service: EmulatorService) -> None:
    global _original, _original_registry, _original_container

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
            if _finder in sys.meta_path:
                sys.meta_path.remove(_finder)
            _unpatch_mlflow()


def original_blob_service_client() -> Any:
    """The class the SDK module holds when no emulator is active (for tests of the restore)."""
    return _original
