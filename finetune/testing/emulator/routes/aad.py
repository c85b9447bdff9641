"""A minimal Entra ID token service, so DefaultAzureCredential's EnvironmentCredential works in server mode."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from ..credential import audience_for_scope, make_jwt
from .common import ok

if TYPE_CHECKING:
    from ..router import Router

AUTHORITY = "https://login.microsoftonline.com"


def register(router: Router) -> None:
    @router.add("GET", "aad:/common/discovery/instance", "aad.discovery")
    def instance_discovery(svc, req):
        tenant = svc.cfg["tenant_id"]
        return ok({"tenant_discovery_endpoint": f"{AUTHORITY}/{tenant}/v2.0/.well-known/openid-configuration",
                   "api-version": "1.1",
                   "metadata": [{"preferred_network": "login.microsoftonline.com",
                                 "preferred_cache": "login.windows.net",
                                 "aliases": ["login.microsoftonline.com", "login.windows.net"]}]})

    @router.add("GET", "aad:/{tenant}/v2.0/.well-known/openid-configuration", "aad.openidConfiguration")
    def openid(svc, req, tenant):
        base = f"{AUTHORITY}/{tenant}"
        return ok({"token_endpoint": f"{base}/oauth2/v2.0/token",
                   "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                   "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                   "issuer": f"https://login.microsoftonline.com/{svc.cfg['tenant_id']}/v2.0",
                   "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                             "client_secret_basic"],
                   "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                   "tenant_region_scope": "NA"})

    @router.add("POST", "aad:/{tenant}/oauth2/v2.0/token", "aad.token_endpoint")
    def token(svc, req, tenant):
        form = dict(parse_qsl(req.body.decode()))
        scope = next((s for s in form.get("scope", "").split() if s.endswith("/.default")),
                     "https://management.azure.com/.default")
        tid = svc.cfg["tenant_id"] if tenant in ("common", "organizations") else tenant
        return ok({"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                   "access_token": make_jwt(audience_for_scope(scope), tid), "expires_on": int(time.time()) + 3600})
