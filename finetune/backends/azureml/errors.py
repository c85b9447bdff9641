"""Translate azure-core / azure-ai-ml exceptions into FinetuneError with a concrete fix.

This is the only place that knows the SDK's exception types; the engine sees one-line diagnoses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from finetune.errors import FinetuneError

T = TypeVar("T")
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def _message(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc)
    # azure-core repeats "(Code) message" as "Code: ...\nMessage: ..." lines after it; once is enough
    text = text.split("\nCode:")[0]
    text = " ".join(text.split())
    return text[:400]


def status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def diagnose(exc: Exception, what: str) -> FinetuneError:
    """A FinetuneError saying what failed and how to fix it."""
    message = _message(exc)
    lowered = message.lower()
    if is_transient(exc):
        return _transient(exc, what, message)
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
    return status_of(exc) in TRANSIENT_STATUS


def _transient(exc: Exception, what: str, message: str) -> FinetuneError:
    """What is left of a transient failure once the client's retry policy (client.py) has given up."""
    status = status_of(exc)
    if status is None:
        return FinetuneError(f"{what}: could not reach Azure ML after retries: {message}",
                             hint="check the network and any proxy (HTTPS_PROXY); then apply again: it resumes "
                             "where it stopped")
    if status == 429:
        return FinetuneError(f"{what}: Azure ML kept throttling (HTTP 429) after retries: {message}",
                             hint="too many requests for this subscription right now: wait a few minutes, then "
                             "apply again: it resumes where it stopped")
    return FinetuneError(f"{what}: Azure ML kept failing (HTTP {status}) after retries: {message}",
                         hint="the service is unavailable or failing; wait and apply again, it resumes where it "
                         "stopped; if it persists, check https://status.azure.com or open a support request")


def call(fn: Callable[[], T], what: str) -> T:
    """Run one SDK call; translate what it raises into a one-line FinetuneError with a fix.

    No retry here: transient failures (429/5xx/connection) are retried, with backoff and Retry-After, by the
    azure-core retry policy every client gets from the factory (client.py). Stacking a second loop on top
    multiplied the waits.
    """
    try:
        return fn()
    except FinetuneError:
        raise
    except Exception as exc:  # noqa: BLE001 - SDK errors are translated here, at the seam
        raise diagnose(exc, what) from exc
