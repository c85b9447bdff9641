"""MLflow's REST API where the workspace's ``mlFlowTrackingUri`` points (its https form).

``azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<s>/resourceGroups/<rg>/providers/
Microsoft.MachineLearningServices/workspaces/<ws>`` is served as ``https://<region>.api.azureml.ms/mlflow/v1.0/...``
with MLflow's routes under ``/api/2.0/mlflow`` (azureml-examples ``using_mlflow_rest_api.ipynb``; shapes from
mlflow.org's REST API reference): experiments get-by-name / get, ``runs/search`` with filter strings on tags and
attributes (``tags.mlflow.rootRunId = '<job>'``; AND only, as Azure ML allows), ``runs/get`` and
``metrics/get-history``. Runs and metrics come from ``runs.py``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..http import EmuResponse
from ..runs import run_views
from .common import check_workspace, ok

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"
BASE = ("api:/mlflow/v1.0/subscriptions/{sub}/resourceGroups/{rg}/providers/" + MLS
        + "/workspaces/{ws}/api/2.0/mlflow")
PAGE = 1000  # MLflow's default max_results for runs/search


def mlflow_error(status: int, code: str, message: str) -> EmuResponse:
    """MLflow's error shape: {"error_code", "message"}."""
    return EmuResponse.json(status, {"error_code": code, "message": message})


def _not_found(message: str) -> EmuResponse:
    return mlflow_error(404, "RESOURCE_DOES_NOT_EXIST", message)


def _public(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "history"}


def all_runs(svc) -> list[dict[str, Any]]:
    now = svc.clock.now()
    return [view for job in svc.state["jobs"].values() for view in run_views(svc, job, now)]


def find_run(svc, run_id: str) -> dict[str, Any] | None:
    return next((v for v in all_runs(svc) if v["info"]["run_id"] == run_id), None)


_CLAUSE = re.compile(
    r"""^\s*(?:(?P<entity>tags|tag|attributes|attribute|attr|run|params|param|metrics|metric)\.)?
         (?P<key>`[^`]+`|"[^"]+"|[\w.]+)\s*(?P<op>=|!=|LIKE|ILIKE)\s*(?P<value>'[^']*'|"[^"]*"|[-\w.]+)\s*$""",
    re.IGNORECASE | re.VERBOSE)


def parse_filter(text: str) -> list[tuple[str, str, str, str]]:
    """MLflow's search filter as (entity, key, op, value) clauses joined by AND; OR is refused, as Azure ML does."""
    if not text.strip():
        return []
    if re.search(r"\sor\s", text, re.IGNORECASE):
        raise ValueError("OR is not supported in filter strings")
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if m is None:
            raise ValueError(f"cannot parse the filter clause {part!r}")
        entity = (m.group("entity") or "attributes").lower().rstrip("s")
        entity = {"tag": "tags", "attribute": "attributes", "attr": "attributes", "run": "attributes",
                  "param": "params", "metric": "metrics"}[entity]
        clauses.append((entity, m.group("key").strip("`\""), m.group("op").upper(), m.group("value").strip("'\"")))
    return clauses


def _field(view: dict[str, Any], entity: str, key: str) -> str | None:
    if entity == "tags":
        return next((t["value"] for t in view["data"]["tags"] if t["key"] == key), None)
    if entity == "params":
        return next((p["value"] for p in view["data"]["params"] if p["key"] == key), None)
    if entity == "metrics":
        found = next((m["value"] for m in view["data"]["metrics"] if m["key"] == key), None)
        return None if found is None else str(found)
    info = view["info"]
    return {"run_name": info.get("run_name"), "status": info.get("status"), "run_id": info.get("run_id"),
            "start_time": str(info.get("start_time"))}.get(key)


def _like(pattern: str, value: str, flags: int) -> bool:
    regex = "^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$"
    return re.match(regex, value, flags) is not None


def matches(view: dict[str, Any], clauses: list[tuple[str, str, str, str]]) -> bool:
    for entity, key, op, want in clauses:
        have = _field(view, entity, key)
        if entity == "tags" and op == "!=":
            raise ValueError("!= is not supported on tags")
        if op == "=" and have != want:
            return False
        if op == "!=" and have == want:
            return False
        if op in ("LIKE", "ILIKE") and (have is None or not _like(want, have, re.IGNORECASE if op == "ILIKE" else 0)):
            return False
    return True


def register(router: Router) -> None:
    def experiment(svc, sub, rg, ws, found: dict[str, Any] | None, missing: str) -> EmuResponse:
        check_workspace(svc, sub, rg, ws)
        return _not_found(missing) if found is None else ok({"experiment": found})

    @router.add("GET", BASE + "/experiments/get-by-name", "mlflow.experiments.getByName")
    def get_by_name(svc, req, sub, rg, ws):
        name = req.query.get("experiment_name", "")
        found = (svc.state.get("experiments") or {}).get(name)
        return experiment(svc, sub, rg, ws, found, f"Experiment '{name}' does not exist.")

    @router.add("GET", BASE + "/experiments/get", "mlflow.experiments.get")
    def get_experiment(svc, req, sub, rg, ws):
        wanted = req.query.get("experiment_id", "")
        found = next((e for e in (svc.state.get("experiments") or {}).values() if e["experiment_id"] == wanted),
                     None)
        return experiment(svc, sub, rg, ws, found, f"Could not find experiment with ID {wanted}")

    @router.add("POST", BASE + "/runs/search", "mlflow.runs.search")
    def search(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        body = req.json() or {}
        experiments = {str(e) for e in body.get("experiment_ids") or []}
        try:
            clauses = parse_filter(str(body.get("filter") or ""))
            found = [v for v in all_runs(svc) if (not experiments or v["info"]["experiment_id"] in experiments)
                     and matches(v, clauses)]
        except ValueError as exc:
            return mlflow_error(400, "INVALID_PARAMETER_VALUE", f"Invalid filter: {exc}")
        found.sort(key=lambda v: (-v["info"]["start_time"], v["info"]["run_id"]))
        size = int(body.get("max_results") or PAGE)
        offset = int(body.get("page_token") or 0)
        page = found[offset: offset + size]
        payload: dict[str, Any] = {"runs": [_public(v) for v in page]}
        if offset + size < len(found):
            payload["next_page_token"] = str(offset + size)
        return ok(payload)

    def with_run(svc, req, sub, rg, ws, answer) -> EmuResponse:
        """The run named by `run_id` (or the older `run_uuid`) through `answer`, or MLflow's 404."""
        check_workspace(svc, sub, rg, ws)
        run_id = req.query.get("run_id") or req.query.get("run_uuid") or ""
        view = find_run(svc, run_id)
        return _not_found(f"Run '{run_id}' not found.") if view is None else ok(answer(view))

    @router.add("GET", BASE + "/runs/get", "mlflow.runs.get")
    def get_run(svc, req, sub, rg, ws):
        return with_run(svc, req, sub, rg, ws, lambda view: {"run": _public(view)})

    @router.add("GET", BASE + "/metrics/get-history", "mlflow.metricHistory.get")
    def history(svc, req, sub, rg, ws):
        key = req.query.get("metric_key", "")
        return with_run(svc, req, sub, rg, ws, lambda view: {"metrics": view["history"].get(key, [])})
