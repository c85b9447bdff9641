"""The MLflow model registry for local models: register, find by tags (the fingerprint), delete, read metrics.

A registered version's files live in the MLflow artifact store (under the state folder for a sqlite URI), so a
deployment serves the registered version, not a job's scratch dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune.backends.local.tracking import client, ensure_experiment

MODEL_ARTIFACT_PATH = "model"


class RegistryError(RuntimeError):
    """An MLflow registry operation failed (translated from MLflow's exceptions)."""


def register_model(tracking_uri: str, name: str, model_dir: str | Path, *, run_id: str | None = None,
                   tags: dict[str, str] | None = None, description: str | None = None,
                   experiment_name: str = "finetune") -> str:
    """Copy model_dir into a run's artifacts (the training run if given, else a new one) and register it.

    Returns the new version number as a string (MLflow's convention, like Azure ML's).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise RegistryError(f"{model_dir} is not a saved model (no config.json)")
    c = client(tracking_uri)
    try:
        if run_id is None:
            run_id = c.create_run(ensure_experiment(c, tracking_uri, experiment_name),
                                  tags={"finetune.kind": "registration"}).info.run_id
            c.set_terminated(run_id)
        # Tags decide identity: keep them on the run's copy too, so artifacts are traceable.
        c.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_PATH)
        try:
            c.get_registered_model(name)
        except Exception:
            try:
                c.create_registered_model(name, tags={"finetune.managed": "true"}, description=description)
            except Exception:  # created concurrently
                c.get_registered_model(name)
        source = f"{c.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT_PATH}"
        mv = c.create_model_version(name, source=source, run_id=run_id, tags=dict(tags or {}),
                                    description=description)
        return str(mv.version)
    except RegistryError:
        raise
    except Exception as exc:
        raise RegistryError(f"registering {name} in {tracking_uri}: {exc}") from exc


def list_model_versions(tracking_uri: str, name: str) -> list[Any]:
    c = client(tracking_uri)
    try:
        versions = c.search_model_versions(f"name = '{_quote(name)}'")
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise RegistryError(f"listing versions of {name}: {exc}") from exc
    return sorted(versions, key=lambda v: int(v.version))


def find_model_version(tracking_uri: str, name: str, tags: dict[str, str] | None = None) -> str | None:
    """The newest version of `name` carrying all the given tags (e.g. {"finetune.fingerprint": fp}), or None."""
    wanted = dict(tags or {})
    matches = [v for v in list_model_versions(tracking_uri, name)
               if all(v.tags.get(k) == str(val) for k, val in wanted.items())]
    return str(matches[-1].version) if matches else None


def model_version_info(tracking_uri: str, name: str, version: str) -> dict[str, Any]:
    """Plain facts about one version: source, run_id, tags, status, local path of its files (if local)."""
    c = client(tracking_uri)
    try:
        mv = c.get_model_version(name, str(version))
    except Exception as exc:
        raise RegistryError(f"{name} version {version}: {exc}") from exc
    return {"name": mv.name, "version": str(mv.version), "source": mv.source, "run_id": mv.run_id,
            "tags": dict(mv.tags), "status": mv.status, "created_ms": mv.creation_timestamp,
            "local_path": _local_path(mv.source)}


def model_version_path(tracking_uri: str, name: str, version: str) -> Path:
    """A local directory holding the version's model files (downloaded if the artifact store is remote)."""
    info = model_version_info(tracking_uri, name, version)
    if info["local_path"] and Path(info["local_path"]).is_dir():
        return Path(info["local_path"])
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=info["source"], tracking_uri=tracking_uri))


def delete_model_versions(tracking_uri: str, name: str, versions: list[str] | None = None,
                          tags: dict[str, str] | None = None) -> list[str]:
    """Delete the listed versions (or those carrying all `tags`, or all). The registered model goes when empty.

    Returns the deleted version numbers. Missing model or versions are not an error (destroy is idempotent).
    """
    c = client(tracking_uri)
    existing = list_model_versions(tracking_uri, name)
    wanted = dict(tags or {})
    doomed = [v for v in existing
              if (versions is None or str(v.version) in {str(x) for x in versions})
              and all(v.tags.get(k) == str(val) for k, val in wanted.items())]
    try:
        for v in doomed:
            c.delete_model_version(name, str(v.version))
        if existing and len(doomed) == len(existing):
            c.delete_registered_model(name)
    except Exception as exc:
        raise RegistryError(f"deleting versions of {name}: {exc}") from exc
    return [str(v.version) for v in doomed]


def get_run_metrics(tracking_uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric's full history as (step, value) pairs in step order, e.g. {"loss": [(1, 6.9), ...]}."""
    c = client(tracking_uri)
    try:
        keys = c.get_run(run_id).data.metrics.keys()
        return {k: sorted((int(m.step), float(m.value)) for m in c.get_metric_history(run_id, k)) for k in keys}
    except Exception as exc:
        raise RegistryError(f"reading metrics of run {run_id}: {exc}") from exc


def get_run_params(tracking_uri: str, run_id: str) -> dict[str, str]:
    try:
        return dict(client(tracking_uri).get_run(run_id).data.params)
    except Exception as exc:
        raise RegistryError(f"reading params of run {run_id}: {exc}") from exc


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    if uri.startswith("/"):
        return uri
    return None
