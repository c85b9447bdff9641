"""Fixtures for the local target: a small slice of the quickstart chats and one tiny trained job per session."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "data" / "quickstart"

# Small enough for a 2-core machine: a 2-layer, 64-wide model trains a step in a few tens of milliseconds.
TINY = {"layers": 2, "hidden": 64, "heads": 4, "vocab_size": 600, "max_position": 256}


def heavy() -> None:
    """Skip (not fail) where the `local` extra is not installed. Only looks: importing torch here would cost
    seconds, and the work happens in subprocesses anyway."""
    missing = [m for m in ("torch", "transformers", "peft", "mlflow") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs finetune[local] (missing: {', '.join(missing)})")


@pytest.fixture(scope="session")
def chat_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rows = (QUICKSTART / "train.jsonl").read_text(encoding="utf-8").splitlines()
    d = tmp_path_factory.mktemp("chats")
    (d / "train.jsonl").write_text("\n".join(rows[:64]) + "\n", encoding="utf-8")
    (d / "validation.jsonl").write_text("\n".join(rows[64:72]) + "\n", encoding="utf-8")
    return {"train": d / "train.jsonl", "validation": d / "validation.jsonl"}


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def tracking_uri(state_dir: Path) -> str:
    from finetune.backends.local.tracking import sqlite_uri

    return sqlite_uri(state_dir / "mlflow.db")


def make_config(chat_files: dict[str, Path], output_dir: Path, tracking_uri: str | None = None, **overrides):
    from finetune.backends.local.config import LocalTrainConfig

    params = {"num_train_epochs": 2, "per_device_train_batch_size": 4, "learning_rate": 3e-3, "lora_r": 16,
              "lora_alpha": 32, "max_seq_length": 256, "seed": 1, "logging_steps": 1}
    params.update(overrides.pop("parameters", {}))
    return LocalTrainConfig(
        model={"tiny": TINY}, train_file=str(chat_files["train"]), validation_file=str(chat_files["validation"]),
        output_dir=str(output_dir), parameters=params,
        mlflow={"tracking_uri": tracking_uri, "experiment_name": "tests", "tags": {"finetune.address": "job.t"}}
        if tracking_uri else None,
        **overrides)


@pytest.fixture(scope="session")
def trained_job(chat_files, state_dir, tracking_uri):
    """One completed tiny LoRA job through the real detached entry point, shared by several tests."""
    heavy()
    from finetune.backends.local import trainjob

    out = state_dir / "jobs" / "trained"
    config = make_config(chat_files, out, tracking_uri)
    status = trainjob.launch(config)
    status = trainjob.wait(out, timeout=240)
    if status.state is not trainjob.JobState.COMPLETED:
        log = (out / "train.log").read_text() if (out / "train.log").exists() else ""
        pytest.fail(f"job ended {status.state}: {status.error}\n{log[-3000:]}")
    yield {"config": config, "status": status, "out": out}


def read_status(out: Path) -> dict:
    return json.loads((out / "status.json").read_text())


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
