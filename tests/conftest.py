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
