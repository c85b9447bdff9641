"""Blob storage for the workspace's default storage account (what the SDK's uploads of local inputs hit)."""

from __future__ import annotations

import base64
import hashlib
import re
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from ..http import EmuResponse

if TYPE_CHECKING:
    from ..router import Router

BLOB = "blob:/{container}/{blob*}"
CONTAINER = "blob:/{container}"


def _err(status: int, code: str, message: str, head: bool = False) -> EmuResponse:
    body = b"" if head else (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>'
    ).encode()
    return EmuResponse(status, body, {"x-ms-error-code": code, "Content-Type": "application/xml",
                                      "Content-Length": str(len(body))})


def _authorized(req) -> bool:
    return "sig" in req.query or (req.header("authorization") or "").startswith(("SharedKey", "Bearer"))


def _key(container: str, blob: str) -> str:
    return f"{container}/{unquote(blob)}"


def _props_headers(entry: dict[str, Any]) -> dict[str, str]:
    h = {
        "Content-Length": str(entry["size"]),
        "Content-Type": entry.get("content_type") or "application/octet-stream",
        "ETag": entry["etag"],
        "Last-Modified": entry["last_modified"],
        "x-ms-blob-type": "BlockBlob",
        "x-ms-creation-time": entry["last_modified"],
        "x-ms-server-encrypted": "true",
        "Accept-Ranges": "bytes",
        "x-ms-version": "2021-08-06",
    }
    if entry.get("md5"):
        h["Content-MD5"] = entry["md5"]
    for k, v in (entry.get("metadata") or {}).items():
        h[f"x-ms-meta-{k}"] = v
    return h


def put_blob(svc, container: str, name: str, data: bytes, *, content_type: str | None = None,
             metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Store a blob (also used by the emulator itself for job logs and outputs)."""
    now = svc.clock.now()
    entry = {
        "data": base64.b64encode(data).decode(),
        "size": len(data),
        "content_type": content_type,
        "metadata": metadata or {},
        "etag": f'"0x{hashlib.sha1(data + str(now).encode()).hexdigest()[:15].upper()}"',
        "last_modified": formatdate(now, usegmt=True),
        "md5": base64.b64encode(hashlib.md5(data).digest()).decode(),
    }
    svc.state["blobs"][f"{container}/{name}"] = entry
    return entry


def get_blob_bytes(svc, container: str, name: str) -> bytes | None:
    entry = svc.state["blobs"].get(f"{container}/{name}")
    return None if entry is None else base64.b64decode(entry["data"])


def _metadata_from_headers(req) -> dict[str, str]:
    return {k[len("x-ms-meta-"):]: v for k, v in req.headers.items() if k.startswith("x-ms-meta-")}


def register(router: Router) -> None:
    @router.add("HEAD", BLOB, "blob.getProperties")
    def head_blob(svc, req, container, blob):
        if not _authorized(req):
            return _err(403, "AuthenticationFailed", "Server failed to authenticate the request.", head=True)
        entry = svc.state["blobs"].get(_key(container, blob))
        if entry is None:
            return _err(404, "BlobNotFound", "The specified blob does not exist.", head=True)
        return EmuResponse(200, b"", _props_headers(entry))

    @router.add("GET", BLOB, "blob.get")
    def get_blob(svc, req, container, blob):
        if not _authorized(req):
            return _err(403, "AuthenticationFailed", "Server failed to authenticate the request.")
        entry = svc.state["blobs"].get(_key(container, blob))
        if entry is None:
            return _err(404, "BlobNotFound", "The specified blob does not exist.")
        data = base64.b64decode(entry["data"])
        headers = _props_headers(entry)
        rng = req.header("x-ms-range") or req.header("range")
        m = re.match(r"bytes=(\d+)-(\d*)", rng or "")
        if m and int(m.group(1)) >= len(data):  # e.g. any range of an empty log: the SDK retries without one
            resp = _err(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
            resp.headers["Content-Range"] = f"bytes */{len(data)}"
            return resp
        if m:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            end = min(end, len(data) - 1)
            part = data[start:end + 1]
            headers.update({"Content-Length": str(len(part)), "Content-Range": f"bytes {start}-{end}/{len(data)}"})
            headers.pop("Content-MD5", None)
            return EmuResponse(206, part, headers)
        return EmuResponse(200, data, headers)

    @router.add("PUT", BLOB, "blob.put")
    def put(svc, req, container, blob):
        if not _authorized(req):
            return _err(403, "AuthenticationFailed", "Server failed to authenticate the request.")
        key = _key(container, blob)
        name = key.split("/", 1)[1]
        comp = req.query.get("comp")
        if comp == "metadata":
            entry = svc.state["blobs"].get(key)
            if entry is None:
                return _err(404, "BlobNotFound", "The specified blob does not exist.")
            entry["metadata"] = _metadata_from_headers(req)
            return EmuResponse(200, b"", {"ETag": entry["etag"], "Last-Modified": entry["last_modified"],
                                          "Content-Length": "0"})
        if comp == "block":
            staged = svc.state.setdefault("staged_blocks", {}).setdefault(key, {})
            staged[req.query.get("blockid", "")] = base64.b64encode(req.body).decode()
            return EmuResponse(201, b"", {"Content-Length": "0", "x-ms-request-server-encrypted": "true"})
        if comp == "blocklist":
            staged = svc.state.get("staged_blocks", {}).pop(key, {})
            ids = re.findall(r"<(?:Latest|Uncommitted|Committed)>([^<]+)</", req.body.decode())
            data = b"".join(base64.b64decode(staged.get(i, "")) for i in ids)
            entry = put_blob(svc, container, name, data, content_type=req.header("x-ms-blob-content-type"),
                             metadata=_metadata_from_headers(req))
            return EmuResponse(201, b"", {"ETag": entry["etag"], "Last-Modified": entry["last_modified"],
                                          "Content-Length": "0", "x-ms-request-server-encrypted": "true"})
        entry = put_blob(svc, container, name, req.body, content_type=req.header("x-ms-blob-content-type"),
                         metadata=_metadata_from_headers(req))
        return EmuResponse(201, b"", {"ETag": entry["etag"], "Last-Modified": entry["last_modified"],
                                      "Content-MD5": entry["md5"], "Content-Length": "0",
                                      "x-ms-request-server-encrypted": "true"})

    @router.add("DELETE", BLOB, "blob.delete")
    def delete(svc, req, container, blob):
        if svc.state["blobs"].pop(_key(container, blob), None) is None:
            return _err(404, "BlobNotFound", "The specified blob does not exist.")
        return EmuResponse(202, b"", {"Content-Length": "0"})

    @router.add("GET", CONTAINER, "blob.list")
    def list_blobs(svc, req, container):
        if not _authorized(req):
            return _err(403, "AuthenticationFailed", "Server failed to authenticate the request.")
        prefix = req.query.get("prefix", "")
        items = []
        for key, entry in sorted(svc.state["blobs"].items()):
            c, name = key.split("/", 1)
            if c != container or not name.startswith(prefix):
                continue
            items.append(
                f"<Blob><Name>{escape(name)}</Name><Properties><Last-Modified>{entry['last_modified']}</Last-Modified>"
                f"<Etag>{entry['etag']}</Etag><Content-Length>{entry['size']}</Content-Length>"
                f"<Content-Type>{entry.get('content_type') or 'application/octet-stream'}</Content-Type>"
                f"<BlobType>BlockBlob</BlobType></Properties></Blob>"
            )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="https://{req.host}/" ContainerName="{escape(container)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(items)}</Blobs><NextMarker /></EnumerationResults>"
        ).encode()
        return EmuResponse(200, xml, {"Content-Type": "application/xml", "Content-Length": str(len(xml))})

    @router.add("PUT", CONTAINER, "blob.createContainer")
    def create_container(svc, req, container):
        return EmuResponse(201, b"", {"Content-Length": "0"})
