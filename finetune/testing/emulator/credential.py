"""A credential that issues unsigned-but-well-formed JWTs with the audiences and claims the SDK checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_OBJECT_ID = "00000000-0000-0000-0000-00000000e3a1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def audience_for_scope(scope: str) -> str:
    """The resource a scope names, as Entra ID puts it in ``aud``: the scope minus ``/.default``.

    ``https://ml.azure.com/.default`` -> ``https://ml.azure.com`` (azure-ai-ml compares ``aud`` with that).
    """
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


def make_jwt(audience: str, tenant_id: str = DEFAULT_TENANT, object_id: str = DEFAULT_OBJECT_ID,
             lifetime: int = 3600) -> str:
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": tenant_id,
        "oid": object_id,
        "sub": object_id,
        "upn": "emulator@finetune.local",
        "name": "finetune emulator user",
        "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "ver": "1.0",
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(b"finetune-emulator", signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


class EmulatorCredential:
    """Implements azure-core's ``TokenCredential`` (and ``SupportsTokenInfo``) protocols."""

    def __init__(self, tenant_id: str = DEFAULT_TENANT, object_id: str = DEFAULT_OBJECT_ID) -> None:
        self.tenant_id = tenant_id
        self.object_id = object_id
        self.scopes_requested: list[str] = []

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any):
        from azure.core.credentials import AccessToken

        scope = scopes[0] if scopes else "https://management.azure.com/.default"
        self.scopes_requested.append(scope)
        token = make_jwt(audience_for_scope(scope), tenant_id or self.tenant_id, self.object_id)
        return AccessToken(token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: dict[str, Any] | None = None):
        from azure.core.credentials import AccessTokenInfo

        tok = self.get_token(*scopes, tenant_id=(options or {}).get("tenant_id"))
        return AccessTokenInfo(tok.token, tok.expires_on, token_type="Bearer")

    def close(self) -> None:
        return None

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
