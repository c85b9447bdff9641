"""The training job through its real detached entry point: status, metrics, adoption, resume, cancel, failure."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import heavy, make_config, read_status

from finetune.backends.local import trainjob
from finetune.backends.local.config import ConfigError
from finetune.backends.local.trainjob import JobState


def _wait_for(predicate, timeout=120.0, poll=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not met in time")


def test_completed_job_status_and_outputs(trained_job):
    status, out = trained_job["status"], trained_job["out"]
    raw = read_status(out)
    assert raw["state"] == "Completed" and raw["format"] == 1 and raw["attempt"] == 1
    assert raw["step"] == raw["max_steps"] > 0 and raw["device"] in {"cpu", "cuda"}
    assert raw["started_at"] and raw["ended_at"] and raw["error"] is None
    assert raw["train_tokens"] > 0 and raw["tokens_per_second"] > 0
    assert {"loss", "eval_loss", "train_loss"} <= set(raw["metrics"])
    model = out / "model"
    assert (model / "config.json").exists() and (model / "chat_template.jinja").exists()
    assert not (model / "adapter_config.json").exists()  # LoRA merged: serving needs no peft
    assert status.model_dir == str(model) and status.mlflow_run_id


def test_loss_decreases(trained_job, tracking_uri):
    from finetune.backends.local.registry import get_run_metrics

    metrics = get_run_metrics(tracking_uri, trained_job["status"].mlflow_run_id)
    losses = [v for _, v in metrics["loss"]]
    assert len(losses) == read_status(trained_job["out"])["max_steps"]  # logged every step
    k = max(1, len(losses) // 4)
    assert sum(losses[-k:]) / k < sum(losses[:k]) / k - 0.2
    assert len(metrics["eval_loss"]) == 2  # once per epoch


def test_relaunch_of_a_completed_job_does_not_retrain(trained_job):
    before = read_status(trained_job["out"])
    again = trainjob.launch(trained_job["config"])
    assert again.state is JobState.COMPLETED
    assert read_status(trained_job["out"]) == before


def test_a_different_job_in_the_same_dir_is_refused(trained_job, chat_files):
    other = make_config(chat_files, trained_job["out"], parameters={"seed": 99})
    with pytest.raises(ConfigError, match="different training job"):
        trainjob.launch(other)


def test_resume_after_kill(chat_files, tmp_path, tracking_uri):
    heavy()
    out = tmp_path / "job"
    # Long enough (100 steps) that a test process starved by a busy machine still catches it mid-run.
    config = make_config(chat_files, out, tracking_uri, parameters={"max_steps": 100, "per_device_train_batch_size": 2},
                         checkpoint_every_steps=4)
    first = trainjob.launch(config)
    assert first.state is JobState.RUNNING
    _wait_for(lambda: (read_status(out).get("last_checkpoint_step") or 0) >= 4)
    os.kill(first.pid, signal.SIGSTOP)  # freeze it mid-run: the checks below must not race the end of training
    try:
        # While it runs: launch re-attaches, and a second process for the same dir refuses to start.
        again = trainjob.launch(config)
        assert again.state is JobState.RUNNING and again.pid == first.pid
        second = subprocess.run([sys.executable, "-m", trainjob.MODULE, "run", str(out / "job.json")],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == trainjob.EXIT_ALREADY_RUNNING
    finally:
        os.kill(first.pid, signal.SIGKILL)
    run_id = read_status(out)["mlflow"]["run_id"]
    interrupted = _wait_for(lambda: (s := trainjob.observe(out)).state is JobState.INTERRUPTED and s)
    checkpoint_step = read_status(out)["last_checkpoint_step"]
    assert 4 <= checkpoint_step < 100 and interrupted.terminal

    resumed = trainjob.launch(config)
    assert resumed.pid != first.pid
    done = trainjob.wait(out, timeout=240)
    assert done.state is JobState.COMPLETED, done.error
    raw = read_status(out)
    # The kill may land after a newer checkpoint was complete but before the status file said so.
    assert raw["attempt"] == 2 and raw["resumed_from_step"] >= checkpoint_step and raw["step"] == 100
    assert raw["mlflow"]["run_id"] == run_id  # the same MLflow run continues
    assert "resuming from" in (out / "train.log").read_text()
    assert len(list((out / "checkpoints").glob("checkpoint-*"))) <= config.checkpoints_to_keep


def test_cancel(chat_files, tmp_path):
    heavy()
    out = tmp_path / "job"
    config = make_config(chat_files, out, parameters={"max_steps": 5000})
    trainjob.launch(config)
    _wait_for(lambda: trainjob.observe(out).step >= 2)
    status = trainjob.cancel(out)
    assert status.state is JobState.CANCELED and status.raw["ended_at"]


def test_failure_lands_in_the_status_file(chat_files, tmp_path):
    heavy()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    out = tmp_path / "job"
    config = make_config({"train": bad, "validation": chat_files["validation"]}, out)
    trainjob.launch(config)
    status = trainjob.wait(out, timeout=120)
    assert status.state is JobState.FAILED
    assert "no 'messages' list" in status.error and status.raw["error"]["traceback"]


def test_observe_an_empty_dir(tmp_path):
    status = trainjob.observe(tmp_path)
    assert status.state is JobState.NOT_STARTED and status.model_dir is None and not status.terminal


def test_unusable_mlflow_fails_the_job(chat_files, tmp_path):
    heavy()
    out = tmp_path / "job"
    config = make_config(chat_files, out, "bogus-scheme://nowhere", parameters={"max_steps": 3})
    trainjob.launch(config)
    status = trainjob.wait(out, timeout=120)
    assert status.state is JobState.FAILED and "MLflow tracking failed" in status.error


def test_an_incomplete_checkpoint_is_skipped(tmp_path):
    from finetune.backends.local.training import last_complete_checkpoint

    for step in (4, 8):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    (tmp_path / "checkpoint-8" / "model.safetensors").write_text("half")  # killed mid-save
    assert last_complete_checkpoint(tmp_path) == (str(tmp_path / "checkpoint-4"), 4)
    assert not (tmp_path / "checkpoint-8").exists()
    assert last_complete_checkpoint(tmp_path / "none") == (None, None)


def test_a_local_path_is_a_model_source(trained_job, tmp_path):
    from finetune.backends.local.config import LocalTrainConfig
    from finetune.backends.local.training import load_base

    config = LocalTrainConfig(model={"path": trained_job["status"].model_dir}, train_file="unused",
                              output_dir=str(tmp_path))
    tokenizer, model = load_base(config, "cpu")
    assert tokenizer.chat_template and model.config.num_hidden_layers == 2


def test_the_adapter_side_imports_nothing_heavy():
    """Importing trainjob (what the backend does to launch and observe) loads neither `training` nor torch,
    transformers, peft or mlflow: those come only inside the job process, after its lock (see jobdir)."""
    probe = ("import sys, finetune.backends.local.trainjob\n"
             "heavy = ('torch', 'transformers', 'peft', 'mlflow', 'finetune.backends.local.training')\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout
