"""Transport-independent request/response types and the ARM error shape."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class EmuRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.host = (parts.hostname or "").lower()
        self.path = parts.path or "/"
        self.query: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.headers = {k.lower(): v for k, v in self.headers.items()}

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class EmuResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> EmuResponse:
        body = json.dumps(payload).encode()
        h = {"Content-Type": "application/json; charset=utf-8", "x-ms-response-type": "standard"}
        h.update(headers or {})
        return cls(status, body, h)

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> EmuResponse:
        h = {"Content-Length": "0"}
        h.update(headers or {})
        return cls(status, b"", h)


class ArmError(Exception):
    """Raised by route handlers; rendered as ``{"error": {"code", "message", "details", "additionalInfo"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail_code: str | None = None,
        detail_message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.detail_code, self.detail_message = detail_code, detail_message
        self.headers = headers or {}

    def to_response(self) -> EmuResponse:
        details = []
        if self.detail_code:
            details.append(
                {"code": self.detail_code, "message": self.detail_message or self.message, "details": [],
                 "additionalInfo": []}
            )
        payload = {
            "error": {
                "code": self.code,
                "message": self.message,
                "details": details,
                "additionalInfo": [
                    {"type": "ComponentName", "info": {"value": "managementfrontend"}},
                    {"type": "Correlation",
                     "info": {"value": {"operation": uuid.uuid4().hex, "request": uuid.uuid4().hex[:16]}}},
                ],
            }
        }
        headers = {"x-ms-response-type": "error"}
        headers.update(self.headers)
        resp = EmuResponse.json(self.status, payload, headers)
        resp.headers["x-ms-response-type"] = "error"
        return resp


def not_found(kind: str, name: str, detail_code: str | None = None) -> ArmError:
    return ArmError(
        404,
        "UserError",
        "The specified resource was not found.",
        detail_code=detail_code or f"{kind}NotFound",
        detail_message=f"{kind} with name: {name} not found.",
    )
