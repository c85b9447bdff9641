"""Helpers shared by the route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..http import ArmError, EmuResponse

if TYPE_CHECKING:
    from ..service import EmulatorService

MLS = "Microsoft.MachineLearningServices"
RG = "arm:/subscriptions/{sub}/resourceGroups/{rg}/providers/" + MLS
WS = RG + "/workspaces/{ws}"
LOC = "arm:/subscriptions/{sub}/providers/" + MLS + "/locations/{loc}"
REG = RG + "/registries/{reg}"


def check_workspace(svc: EmulatorService, sub: str, rg: str, ws: str) -> None:
    cfg = svc.cfg
    if sub.lower() != cfg["subscription_id"].lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
    if rg.lower() != cfg["resource_group"].lower():
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    if ws.lower() != cfg["workspace_name"].lower():
        raise ArmError(
            404, "ResourceNotFound",
            f"The Resource '{MLS}/workspaces/{ws}' under resource group '{rg}' was not found. For more details "
            "please go to https://aka.ms/ARMResourceNotFoundFix",
        )


def ok(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> EmuResponse:
    return EmuResponse.json(status, payload, headers)


def paged(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    top = query.get("$top")
    if top:
        items = items[: int(top)]
    return {"value": items}


def one_page(svc: EmulatorService, req: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A workspace list as ARM pages it: `svc.page_size` items and, while more remain, a `nextLink` (this URL with
    a `$skip` continuation token) that the SDK follows. No page size set: everything on one page."""
    size = svc.page_size
    if not size:
        return {"value": items}
    start = int(req.query.get("$skip") or 0)
    body: dict[str, Any] = {"value": items[start:start + size]}
    if start + size < len(items):
        parts = urlsplit(req.url)
        query = urlencode({**dict(parse_qsl(parts.query)), "$skip": str(start + size)})
        body["nextLink"] = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return body


def order_by_created(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    order = (query.get("$orderBy") or query.get("$orderby") or query.get("orderBy") or "").lower()
    if "createdtime" in order or "createdat" in order:
        items = sorted(items, key=lambda b: b["systemData"]["createdAt"], reverse=order.endswith("desc"))
    return items


def require_body(req: Any) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    return body


def merge_tags(body: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (body or {}).items()}
