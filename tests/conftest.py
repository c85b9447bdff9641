"""Test-wide isolation: no network for hubs, a private HF cache, no telemetry."""

import os
import tempfile

# Set before any test module imports datasets/huggingface_hub/mlflow so they never reach the network.
_HF_HOME = tempfile.mkdtemp(prefix="finetune-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("NO_COLOR", "1")


import pytest  # noqa: E402


@pytest.fixture
def isolated_env():
    """The azure-ai-ml SDK writes AZUREML_CURRENT_CLOUD into os.environ; keep each test's environment to itself."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def fast_stream(monkeypatch):
    """jobs.stream sleeps at least 2 s between polls unless told otherwise."""
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MIN", 0)
    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MAX", 0)
