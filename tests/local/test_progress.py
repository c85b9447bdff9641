"""A local job's status file as the progress apply shows: what loads before the first step, then step/total/loss."""

from __future__ import annotations

from finetune.backends.local.backend import training_progress
from finetune.backends.local.trainjob import JobState, JobStatus
from finetune.render.progress import training_message


def shown(state: JobState, **raw) -> str:
    return training_message(training_progress(JobStatus(state, "/tmp/job", {"state": state.value, **raw})), eta_s=42)


def test_phases_before_the_first_step():
    assert shown(JobState.NOT_STARTED) == "starting the training process"
    assert shown(JobState.RUNNING, phase="importing torch and transformers", step=0, max_steps=None) == \
        "importing torch and transformers"
    # max_steps comes with the first step: until then there is no step line, only the phase
    assert shown(JobState.RUNNING, phase="loading model Qwen/Qwen2.5-0.5B", step=0) == \
        "loading model Qwen/Qwen2.5-0.5B"


def test_steps_total_loss_then_the_end():
    running = {"phase": "", "step": 189, "max_steps": 216, "metrics": {"loss": 0.4716, "grad_norm": 1.2}}
    assert shown(JobState.RUNNING, **running) == "step 189/216 (88%) loss 0.47 eta 0:42"
    assert shown(JobState.RUNNING, **{**running, "phase": "saving the model"}) == "saving the model"
    done = {**running, "step": 216, "phase": "finishing the MLflow run"}  # a phase left over is not shown
    assert shown(JobState.COMPLETED, **done) == "Completed, step 216/216 (100%) loss 0.47"
    assert shown(JobState.FAILED, step=3, max_steps=216) == "Failed, step 3/216 (1%)"
