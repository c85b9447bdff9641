"""Server mode: the emulator over HTTPS on 127.0.0.1, also acting as an HTTPS proxy for every Azure host.

Clients in other processes reach it through standard settings only: ``HTTPS_PROXY`` (the server answers
``CONNECT`` for the Azure hosts it emulates and refuses every other host), ``REQUESTS_CA_BUNDLE`` (its private
CA) and Entra ID client-secret variables (it also emulates the token endpoint). :meth:`EmulatorServer.env`
returns them. Direct HTTPS to ``https://127.0.0.1:<port>`` serves ARM paths and the ``/_emulator/`` admin API.
"""

from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .certs import CertificateAuthority
from .clock import Durations
from .http import EmuRequest, EmuResponse
from .service import EmulatorService, UnknownHostError

CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
CLIENT_SECRET = "finetune-emulator-secret"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def setup(self) -> None:
        first = self.request.recv(1, socket.MSG_PEEK)
        self.tunnel_host: str | None = None
        if first == b"\x16":  # a TLS ClientHello: direct HTTPS to the emulator itself
            self.request = self.server.ca.context_for("127.0.0.1").wrap_socket(self.request, server_side=True)
        super().setup()

    def do_CONNECT(self) -> None:  # noqa: N802
        host = self.path.rsplit(":", 1)[0].strip("[]").lower()
        if not self.server.service.serves_host(host):
            body = f"The Azure ML emulator does not serve {host}; it never forwards to real hosts.".encode()
            self.send_response(502)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls = self.server.ca.context_for(host).wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.connection = self.request = tls
        self.rfile = tls.makefile("rb", self.rbufsize)
        self.wfile = tls.makefile("wb", 0)
        self.tunnel_host = host
        self.close_connection = False
        while not self.close_connection:
            self.handle_one_request()
        self.close_connection = True

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._body()
        if self.tunnel_host:
            url = f"https://{self.tunnel_host}{self.path}"
        elif self.path.startswith("http"):
            url = self.path
        else:
            url = f"https://127.0.0.1{self.path}"
        if urlsplit(url).path.startswith("/_emulator/") and not self.tunnel_host:
            resp = self.server.admin(self.command, url, body)
        else:
            try:
                resp = self.server.service.handle(EmuRequest(self.command, url, dict(self.headers.items()), body))
            except UnknownHostError as err:
                resp = EmuResponse.json(502, {"error": {"code": "UnknownHost", "message": str(err)}})
        self.send_response(resp.status)
        headers = dict(resp.headers)
        if self.command != "HEAD":
            headers["Content-Length"] = str(len(resp.body))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and resp.body:
            self.wfile.write(resp.body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _dispatch  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], service: EmulatorService, ca: CertificateAuthority) -> None:
        super().__init__(addr, _Handler)
        self.service = service
        self.ca = ca

    def admin(self, method: str, url: str, body: bytes) -> EmuResponse:
        svc = self.service
        parts = urlsplit(url)
        q = dict(parse_qsl(parts.query))
        action = parts.path[len("/_emulator/"):].strip("/")
        payload = json.loads(body) if body else {}
        with svc.lock:
            if action == "status":
                return EmuResponse.json(200, {"now": svc.clock.now(), "acceleration": svc.clock.acceleration,
                                              "config": svc.cfg, "writes": len(svc.log.writes()),
                                              "requests": len(svc.log.records)})
            if action == "advance" and method == "POST":
                return EmuResponse.json(200, {"now": svc.clock.advance(float(q.get("seconds", 0)))})
            if action == "faults" and method == "POST":
                f = svc.faults.add(payload["target"], payload["kind"], times=payload.get("times", 1),
                                   **payload.get("params", {}))
                svc.save()
                return EmuResponse.json(201, {"target": f.target, "kind": f.kind})
            if action == "requests":
                return EmuResponse.json(200, {"requests": [
                    {"method": r.method, "url": r.url, "path": r.path, "api_version": r.api_version,
                     "status": r.status, "operation": r.operation, "is_write": r.is_write} for r in svc.log.records]})
            if action == "reset-log" and method == "POST":
                svc.log.reset()
                return EmuResponse.empty(204)
            if action == "state":
                return EmuResponse.json(200, {k: v for k, v in svc.state.items() if k != "blobs"})
        return EmuResponse.json(404, {"error": {"code": "NotFound", "message": f"no admin action {action!r}"}})


class EmulatorServer:
    """Run the emulator as an HTTPS server + proxy in a background thread (or via ``serve``)."""

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        port: int = 0,
        acceleration: float = 10_000.0,
        durations: Durations | None = None,
        latency: float = 0.0,
        **service_kwargs: Any,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="finetune-emu-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.service = EmulatorService(acceleration=acceleration, durations=durations, state_dir=self.state_dir,
                                       **service_kwargs)
        self.service.latency = latency
        self.ca = CertificateAuthority(self.state_dir / "tls")
        self._httpd = _Server(("127.0.0.1", port), self.service, self.ca)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str:
        return str(self.ca.ca_path)

    def env(self) -> dict[str, str]:
        """Environment variables that point an unmodified azure-ai-ml / finetune process at this server."""
        cfg = self.service.cfg
        return {
            "HTTPS_PROXY": self.proxy_url,
            "HTTP_PROXY": self.proxy_url,
            "NO_PROXY": "",
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
            "AZURE_TENANT_ID": cfg["tenant_id"],
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_CLIENT_SECRET": CLIENT_SECRET,
            "AZURE_SUBSCRIPTION_ID": cfg["subscription_id"],
            "AZURE_RESOURCE_GROUP": cfg["resource_group"],
            "AZUREML_WORKSPACE_NAME": cfg["workspace_name"],
            "FINETUNE_AZUREML_POLLING_INTERVAL": "0.05",
            "AZUREML_RUN_POLLING_INTERVAL_MIN": "0",
            "AZUREML_RUN_POLLING_INTERVAL_MAX": "1",
        }

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "proxy": self.proxy_url, "ca_bundle": self.ca_bundle,
                "state_dir": str(self.state_dir), "env": self.env()}

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="azureml-emulator", daemon=True)
        self._thread.start()
        (self.state_dir / "server.json").write_text(json.dumps(self.describe(), indent=2))
        return self

    def serve_forever(self) -> None:
        (self.state_dir / "server.json").write_text(json.dumps(self.describe(), indent=2))
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        with self.service.lock:
            self.service.save()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
