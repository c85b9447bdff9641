"""Scoring at an endpoint's scoringUri: key auth, deployment routing, a chat-completion style answer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..http import EmuResponse

if TYPE_CHECKING:
    from ..router import Router


def _plain(status: int, message: str) -> EmuResponse:
    return EmuResponse(status, json.dumps({"message": message}).encode(), {"Content-Type": "application/json"})


def _last_user_message(payload: Any) -> str:
    try:
        convs = payload["input_data"]["input_string"]
        conv = convs[0] if convs and isinstance(convs[0], list) else convs
        users = [m.get("content", "") for m in conv if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1] if users else ""
    except (KeyError, TypeError, IndexError):
        return ""


def register(router: Router) -> None:
    @router.add("POST", "scoring:/score", "scoring.score")
    def score(svc, req):
        name = req.host.split(".")[0]
        ep = svc.state["endpoints"].get(name.lower())
        if ep is None or ep["body"]["properties"].get("scoringUri") is None:
            return _plain(404, f"No endpoint named {name} is ready at this address.")
        auth = req.header("authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        valid = {ep["keys"]["primaryKey"], ep["keys"]["secondaryKey"], "aml-" + ep["keys"]["primaryKey"]}
        if token not in valid:
            return _plain(401, "Unauthorized: a valid endpoint key is required in the Authorization header.")
        wanted = req.header("azureml-model-deployment")
        traffic = ep["body"]["properties"].get("traffic") or {}
        if wanted:
            dep = ep["deployments"].get(wanted.lower())
        else:
            live = [k for k, v in sorted(traffic.items()) if int(v) > 0]
            dep = ep["deployments"].get(live[0].lower()) if live else None
        if dep is None:
            return _plain(404, "No deployment receives traffic (set endpoint traffic or azureml-model-deployment).")
        if dep["properties"].get("provisioningState") != "Succeeded":
            return _plain(503, f"Deployment {dep['name']} is not ready "
                               f"({dep['properties'].get('provisioningState')}).")
        try:
            payload = json.loads(req.body or b"null")
        except ValueError:
            return _plain(400, "Request body is not valid JSON.")
        if not isinstance(payload, dict) or "input_data" not in payload:
            return _plain(400, "Expected a JSON object with 'input_data'.")
        question = _last_user_message(payload)
        text = f"[{dep['name']}] emulated reply to: {question[:80]}"
        body: Any = {"output": text} if svc.scoring_shape == "output" else [{"0": text}]
        return EmuResponse(200, json.dumps(body).encode(),
                           {"Content-Type": "application/json", "azureml-model-deployment": dep["name"]})
