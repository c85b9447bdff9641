"""MLflow model registry: register, find by fingerprint tag, metrics, delete."""

from pathlib import Path

import pytest

from finetune.backends.local import registry


def test_register_find_and_delete(trained_job, tracking_uri):
    status = trained_job["status"]
    name = "quick-chat"
    assert registry.find_model_version(tracking_uri, name, {"finetune.fingerprint": "fp1"}) is None
    v1 = registry.register_model(tracking_uri, name, status.model_dir, run_id=status.mlflow_run_id,
                                 tags={"finetune.fingerprint": "fp1"})
    v2 = registry.register_model(tracking_uri, name, status.model_dir, tags={"finetune.fingerprint": "fp2"})
    assert (v1, v2) == ("1", "2")
    assert registry.find_model_version(tracking_uri, name, {"finetune.fingerprint": "fp1"}) == "1"
    assert registry.find_model_version(tracking_uri, name) == "2"

    info = registry.model_version_info(tracking_uri, name, v1)
    assert info["run_id"] == status.mlflow_run_id and info["tags"] == {"finetune.fingerprint": "fp1"}
    path = registry.model_version_path(tracking_uri, name, v1)
    assert (path / "config.json").exists() and str(path).startswith(str(Path(tracking_uri[10:]).parent))

    assert registry.delete_model_versions(tracking_uri, name, tags={"finetune.fingerprint": "fp1"}) == ["1"]
    assert [str(v.version) for v in registry.list_model_versions(tracking_uri, name)] == ["2"]
    assert registry.delete_model_versions(tracking_uri, name) == ["2"]
    assert registry.list_model_versions(tracking_uri, name) == []
    assert registry.delete_model_versions(tracking_uri, name) == []  # idempotent


def test_run_params_and_metrics(trained_job, tracking_uri):
    run_id = trained_job["status"].mlflow_run_id
    params = registry.get_run_params(tracking_uri, run_id)
    assert params["lora_r"] == "16" and params["model_source"].startswith("tiny:")
    metrics = registry.get_run_metrics(tracking_uri, run_id)
    steps = [s for s, _ in metrics["loss"]]
    assert steps == sorted(steps) and steps[0] == 1


def test_not_a_model_dir(tmp_path, tracking_uri):
    pytest.importorskip("mlflow")
    with pytest.raises(registry.RegistryError, match="not a saved model"):
        registry.register_model(tracking_uri, "x", tmp_path)
