"""A spec's local training runs, read from its MLflow tracking store; registration runs (no training) left out.

Two readers give the same answer. A sqlite store (the default) is read with the standard library's sqlite3,
read-only, in four indexed queries: importing MLflow's client alone takes ~1.5 s on a quiet 2-core machine (pandas,
SQLAlchemy, alembic come with it), which would spend `finetune runs`' whole 2-second budget. The tables read
(experiments, runs, tags, params, latest_metrics, model_versions) are MLflow's long-standing schema; if a future
MLflow changes them, the query fails and the MLflow client reads the store instead, as it does for any other URI.
tests/local/test_runs.py checks that both readers agree on a store written by MLflow itself.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from finetune.backends.base import TrainingRun

STATUS = {"FINISHED": "Completed", "FAILED": "Failed", "KILLED": "Canceled", "RUNNING": "Running",
          "SCHEDULED": "Queued"}
# run params that are bookkeeping, not inputs (they differ between any two runs)
NOT_INPUTS = {"train_file", "validation_file", "cpu_threads", "train_rows", "eval_rows", "evaluation_rows",
              "evaluation_max_rows"}
DELETED_VERSION = "Deleted_Internal"  # MLflow's stage for a deleted model version (the row stays)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _run(run_id: str, run_name: str | None, status: str, start: int | None, end: int | None, tags: dict[str, str],
         params: dict[str, str], metrics: dict[str, float], model: str | None) -> TrainingRun:
    try:
        inputs = json.loads(tags["finetune.inputs"])
    except (KeyError, ValueError):
        inputs = None
    end = end if status != "RUNNING" else None
    return TrainingRun(name=tags.get("finetune.job") or run_name or run_id, status=STATUS.get(status, status),
                       fingerprint=tags.get("finetune.fingerprint"), started=_iso(start),
                       duration_s=round((end - start) / 1000, 1) if end and start else None, inputs=inputs,
                       params={k: v for k, v in params.items() if k not in NOT_INPUTS}, metrics=metrics,
                       model=model, usd=0.0, link=f"mlflow run {run_id}")


def _training(tags: dict[str, str], spec_name: str) -> bool:
    return tags.get("finetune.spec") == spec_name and tags.get("finetune.kind") != "registration"


def read_sqlite(db_path: str, experiment: str, spec_name: str, model_name: str | None) -> list[TrainingRun]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        ids = [r[0] for r in con.execute("SELECT experiment_id FROM experiments WHERE name = ? AND "
                                         "lifecycle_stage = 'active'", (experiment,))]
        if not ids:
            return []
        rows = con.execute(
            "SELECT r.run_uuid, r.name, r.status, r.start_time, r.end_time FROM runs r JOIN tags t ON "
            "t.run_uuid = r.run_uuid AND t.key = 'finetune.spec' AND t.value = ? WHERE r.experiment_id = ? AND "
            "r.lifecycle_stage = 'active'", (spec_name, ids[0])).fetchall()
        runs = {r[0]: r for r in rows}
        marks = ",".join("?" * len(runs))
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in runs}
        params: dict[str, dict[str, str]] = {run_id: {} for run_id in runs}
        metrics: dict[str, dict[str, float]] = {run_id: {} for run_id in runs}
        for table, into in (("tags", tags), ("params", params)):
            for key, value, run_id in con.execute(f"SELECT key, value, run_uuid FROM {table} WHERE run_uuid IN "
                                                  f"({marks})", list(runs)):
                into[run_id][key] = value
        for key, value, is_nan, run_id in con.execute(
                f"SELECT key, value, is_nan, run_uuid FROM latest_metrics WHERE run_uuid IN ({marks})", list(runs)):
            metrics[run_id][key] = float("nan") if is_nan else float(value)
        versions: dict[str, str] = {}
        if model_name:
            for version, run_id in con.execute(
                    "SELECT version, run_id FROM model_versions WHERE name = ? AND current_stage != ? ORDER BY "
                    "version", (model_name, DELETED_VERSION)):
                versions.setdefault(run_id, f"{model_name}@{version}")
    finally:
        con.close()
    return [_run(run_id, name, status, start, end, tags[run_id], params[run_id], metrics[run_id],
                 versions.get(run_id)) for run_id, name, status, start, end in runs.values()
            if _training(tags[run_id], spec_name)]


def read_client(tracking_uri: str, experiment: str, spec_name: str, model_name: str | None) -> list[TrainingRun]:
    from finetune.backends.local.tracking import client

    c = client(tracking_uri)
    found = c.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = c.search_runs([found.experiment_id], filter_string=f"tags.`finetune.spec` = '{_quote(spec_name)}'",
                         max_results=50000)
    versions: dict[str, str] = {}
    if model_name:
        try:
            listed = c.search_model_versions(f"name = '{_quote(model_name)}'")
        except Exception as exc:  # no such registered model yet
            if "RESOURCE_DOES_NOT_EXIST" not in str(exc):
                raise
            listed = []
        for mv in sorted(listed, key=lambda v: int(v.version)):
            versions.setdefault(mv.run_id, f"{mv.name}@{mv.version}")
    return [_run(r.info.run_id, r.info.run_name, r.info.status, r.info.start_time, r.info.end_time, dict(r.data.tags),
                 dict(r.data.params), dict(r.data.metrics), versions.get(r.info.run_id))
            for r in runs if _training(r.data.tags, spec_name)]


def list_runs(tracking_uri: str, experiment: str, spec_name: str, model_name: str | None) -> list[TrainingRun]:
    if tracking_uri.startswith("sqlite:///"):
        try:
            return read_sqlite(tracking_uri.removeprefix("sqlite:///"), experiment, spec_name, model_name)
        except sqlite3.Error:  # not MLflow's schema as known here: let MLflow read it
            pass
    return read_client(tracking_uri, experiment, spec_name, model_name)


def _quote(value: str) -> str:
    return value.replace("'", "\\'")
