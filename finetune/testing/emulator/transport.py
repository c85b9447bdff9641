"""azure-core transport that answers from the emulator, through the real ``RequestsTransport`` code path.

A ``requests`` adapter is mounted on a private session, so the SDK's requests are encoded exactly as on the
wire (JSON bodies, blob streams, headers) and responses come back as genuine urllib3/requests responses.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter
from urllib3 import HTTPResponse

from .http import EmuRequest

if TYPE_CHECKING:
    from .service import EmulatorService


def _read_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        data = body.read()
        return data.encode() if isinstance(data, str) else data
    return b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in body)


class EmulatorAdapter(BaseAdapter):
    def __init__(self, service: EmulatorService) -> None:
        super().__init__()
        self.service = service

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        emu_req = EmuRequest(str(request.method), str(request.url), dict(request.headers), _read_body(request.body))
        emu_resp = self.service.handle(emu_req)  # raises UnknownHostError for hosts it does not serve
        headers = dict(emu_resp.headers)
        if request.method != "HEAD":
            headers["Content-Length"] = str(len(emu_resp.body))
        raw = HTTPResponse(
            body=io.BytesIO(emu_resp.body), headers=headers, status=emu_resp.status, preload_content=False,
            decode_content=False, request_method=request.method, request_url=request.url,
        )
        resp = requests.Response()
        resp.status_code = emu_resp.status
        resp.headers = requests.structures.CaseInsensitiveDict(headers)
        resp.raw = raw
        resp.url = str(request.url)
        resp.reason = requests.status_codes._codes.get(emu_resp.status, ("",))[0].upper().replace("_", " ")
        resp.request = request
        resp.encoding = requests.utils.get_encoding_from_headers(resp.headers)
        return resp

    def close(self) -> None:
        return None


def emulator_session(service: EmulatorService) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never pick up proxies from the environment
    adapter = EmulatorAdapter(service)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class EmulatorTransport(RequestsTransport):
    """An ``HttpTransport`` for MLClient (and storage clients) that talks to an in-process emulator."""

    def __init__(self, service: EmulatorService, **kwargs: Any) -> None:
        super().__init__(session=emulator_session(service), session_owner=False, **kwargs)
        self.service = service

    def close(self) -> None:  # the shared session outlives any one client
        return None
