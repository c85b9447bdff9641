"""Translate azure-core / azure-ai-ml exceptions into FinetuneError with a concrete fix.

This is the only place that knows the SDK's exception types; the engine sees one-line diagnoses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from finetune.errors import FinetuneError

T = TypeVar("T")
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def _message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    text = " ".join(str(text).split())
    return text[:400]


def diagnose(exc: Exception, what: str) -> FinetuneError:
    """A FinetuneError saying what failed and how to fix it."""
    message = _message(exc)
    lowered = message.lower()
    if "quota" in lowered:
        return FinetuneError(f"{what}: not enough quota: {message}",
                             hint="request a quota increase for this VM family in the Azure portal (Quotas), or "
                             "choose a smaller SKU / fewer instances")
    if "already" in lowered and ("exist" in lowered or "taken" in lowered or "in use" in lowered):
        return FinetuneError(f"{what}: name already taken: {message}",
                             hint="endpoint names are unique per region: set endpoint.unique_suffix: true or "
                             "choose another name")
    if "not allowed" in lowered or "not supported" in lowered or "allow" in lowered and "sku" in lowered:
        return FinetuneError(f"{what}: {message}", hint="choose a SKU from the model's allow list "
                             "(`finetune plan` lists it)")
    if "credential" in lowered or "authentication" in lowered or "token" in lowered and "fail" in lowered:
        first = message.split(". ")[0]
        return FinetuneError(f"{what}: authentication failed: {first}",
                             hint="run `az login`, or set AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET")
    return FinetuneError(f"{what}: {message}")


def is_not_found(exc: Exception) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    if isinstance(exc, ResourceNotFoundError):
        return True
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404:
        return True
    return bool(re.search(r"\b(not found|notfound|could not be found|does not exist)\b", _message(exc), re.I))


def is_transient(exc: Exception) -> bool:
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    return status in TRANSIENT_STATUS


def retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After") or headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


def call(fn: Callable[[], T], what: str, *, attempts: int = 6, base_delay: float = 0.5, max_delay: float = 20.0,
         sleep: Callable[[float], Any] = time.sleep) -> T:
    """Run one SDK call; retry transient failures (429/5xx/connection) with backoff, honouring Retry-After."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except FinetuneError:
            raise
        except Exception as exc:  # noqa: BLE001 - SDK errors are translated here, at the seam
            if is_transient(exc) and attempt < attempts:
                sleep(min(max_delay, retry_after(exc) or base_delay * 2 ** (attempt - 1)))
                continue
            raise diagnose(exc, what) from exc
    raise AssertionError("unreachable")
