"""The emulator's MLflow tracking through the REAL mlflow client, the way Azure ML documents reading a pipeline job:
tracking URI from the workspace (https form), child runs by `tags.mlflow.rootRunId`, curves by get_metric_history."""

from __future__ import annotations

import pytest
import yaml

from finetune.testing.emulator.state import seed_text

COMPONENT = ("/subscriptions/6c6683e9-e5fe-4038-8519-ce6ebec2ba15/resourceGroups/registry-builtin-prod-eastus-01"
             "/providers/Microsoft.MachineLearningServices/registries/azureml/components/chat_completion_pipeline"
             "/versions/0.0.82")
EXPERIMENT = "chat_completion_Phi-3-mini-4k-instruct"


def put_pipeline(emu, name: str, epochs: int = 2) -> None:
    """A pipeline job with one node on the registry's chat_completion_pipeline, as the SDK submits it."""
    node = {"type": "pipeline", "componentId": COMPONENT,
            "inputs": {"num_train_epochs": {"job_input_type": "literal", "value": str(epochs)}}}
    body = {"properties": {"jobType": "Pipeline", "experimentName": EXPERIMENT, "displayName": name,
                           "jobs": {"finetune_node": node}, "inputs": {}, "outputs": {}}}
    url = (f"https://management.azure.com/subscriptions/{emu.subscription_id}/resourceGroups/{emu.resource_group}"
           f"/providers/Microsoft.MachineLearningServices/workspaces/{emu.workspace_name}/jobs/{name}"
           "?api-version=2025-01-01-preview")
    r = emu.transport.session.put(url, json=body, headers={"Authorization": "Bearer x"})
    assert r.status_code == 201, r.text


@pytest.fixture
def client(frozen_emu, monkeypatch):
    """The real MlflowClient on the https form of the tracking URI the SDK reads from the workspace."""
    from mlflow import MlflowClient

    ws = frozen_emu.ml_client().workspaces.get(frozen_emu.workspace_name)
    assert ws.mlflow_tracking_uri.startswith(f"azureml://{frozen_emu.location}.api.azureml.ms/mlflow/v1.0/")
    token = frozen_emu.credential.get_token("https://management.azure.com/.default").token
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    return MlflowClient(tracking_uri=ws.mlflow_tracking_uri.replace("azureml://", "https://", 1))


def children(client, job: str):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([experiment.experiment_id], f"tags.mlflow.rootRunId = '{job}'")


def steps_of_component() -> list[str]:
    spec = yaml.safe_load(seed_text("chat_completion_pipeline-0.0.82.yaml"))
    return list(spec["jobs"])


def running(emu, fraction: float) -> None:
    """Move the frozen clock to `fraction` of the job's Running phase."""
    d = emu.durations
    emu.advance(d.job_not_started + d.job_queued + d.job_running * fraction)


def test_child_runs_follow_the_component_steps_and_log_over_time(frozen_emu, client):
    emu = frozen_emu
    put_pipeline(emu, "ft-job", epochs=2)
    assert client.get_experiment_by_name("no-such-experiment") is None
    assert children(client, "ft-job") == []  # nothing has started yet
    running(emu, 0.05)
    first = {r.info.run_name for r in children(client, "ft-job")}
    assert first == {"finetune_node", "ft_nlp_common_validation"}
    running(emu, 0.45)  # into the fine-tune step
    runs = {r.info.run_name: r for r in children(client, "ft-job")}
    names = steps_of_component()
    assert "chat_completion_finetune" in runs and set(runs) < {"finetune_node", *names}
    node = runs["finetune_node"]
    assert node.data.tags["mlflow.parentRunId"] == "ft-job"
    assert all(r.data.tags["mlflow.parentRunId"] == node.info.run_id for n, r in runs.items() if n != "finetune_node")
    trainer = runs["chat_completion_finetune"]
    assert trainer.info.status == "RUNNING" and {"loss", "learning_rate", "epoch"} <= set(trainer.data.metrics)
    early = client.get_metric_history(trainer.info.run_id, "loss")
    assert early and [m.step for m in early] == sorted(m.step for m in early)
    emu.advance(emu.durations.job_running)  # past the end: the job is Completed
    assert emu.job_status("ft-job") == "Completed"
    runs = {r.info.run_name: r for r in children(client, "ft-job")}
    assert set(runs) == {"finetune_node", *names} and all(r.info.status == "FINISHED" for r in runs.values())
    trainer = runs["chat_completion_finetune"]
    loss = client.get_metric_history(trainer.info.run_id, "loss")
    assert len(loss) > len(early) and loss[-1].value < loss[0].value  # the curve fell
    assert len(client.get_metric_history(trainer.info.run_id, "eval_loss")) == 2  # once per epoch
    assert trainer.data.metrics["epoch"] == 2.0 and "train_loss" in trainer.data.metrics
    assert trainer.data.metrics["loss"] == loss[-1].value  # run.data.metrics holds the last value
    root = client.get_run("ft-job")
    assert root.info.status == "FINISHED" and root.data.metrics == {}  # metrics live on the child
    requested = [r for r in emu.requests if r.operation.startswith("mlflow.")]
    assert all(r.url.startswith(f"https://{emu.location}.api.azureml.ms/mlflow/v1.0/subscriptions/"
                                f"{emu.subscription_id}/") for r in requested)
    assert emu.write_count() == 1  # the job submission; MLflow reads (runs/search is a POST) are no writes


def test_filters_are_mlflows_own_and_unknown_runs_are_404(frozen_emu, client):
    from mlflow.exceptions import MlflowException

    emu = frozen_emu
    put_pipeline(emu, "ft-a")
    put_pipeline(emu, "ft-b")
    running(emu, 0.5)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    assert {r.data.tags["mlflow.rootRunId"] for r in children(client, "ft-a")} == {"ft-a"}
    only = client.search_runs([experiment], "tags.mlflow.rootRunId = 'ft-b' and attributes.run_name = "
                                            "'chat_completion_finetune'")
    assert [r.info.run_name for r in only] == ["chat_completion_finetune"]
    with pytest.raises(MlflowException, match="OR"):
        client.search_runs([experiment], "tags.mlflow.rootRunId = 'ft-a' or tags.mlflow.rootRunId = 'ft-b'")
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_run("no-such-run")
    page = client.search_runs([experiment], "tags.mlflow.rootRunId = 'ft-a'", max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_runs([experiment], "tags.mlflow.rootRunId = 'ft-a'", page_token=page.token)
    assert len(page) + len(rest) == len(children(client, "ft-a"))


def test_a_canceled_job_stops_logging_and_a_failed_one_fails_in_training(frozen_emu, client):
    emu = frozen_emu
    put_pipeline(emu, "ft-cancel")
    emu.faults.add("jobs.create", "job_failed", message="CUDA out of memory")
    put_pipeline(emu, "ft-fail")
    running(emu, 0.45)
    cancel = emu.ml_client().jobs.begin_cancel("ft-cancel")
    emu.advance(emu.durations.job_cancel + 1)  # the frozen clock moves the cancel operation to its end
    cancel.result()
    assert emu.job_status("ft-cancel") == "Canceled"
    emu.advance(emu.durations.job_running)
    cancel = {r.info.run_name: r for r in children(client, "ft-cancel")}
    killed = cancel["chat_completion_finetune"]
    assert killed.info.status == "KILLED" and killed.info.end_time is not None
    assert "ft_nlp_model_converter" not in cancel and "train_loss" not in killed.data.metrics
    fail = {r.info.run_name: r for r in children(client, "ft-fail")}
    assert emu.job_status("ft-fail") == "Failed"
    assert fail["chat_completion_finetune"].info.status == "FAILED"
    assert "ft_nlp_model_converter" not in fail and "train_loss" not in fail["chat_completion_finetune"].data.metrics


def test_injected_403_reaches_the_mlflow_client(frozen_emu, client):
    from mlflow.exceptions import MlflowException

    frozen_emu.faults.add("mlflow.*", "error", status=403, code="AuthorizationFailed",
                          message="The client does not have authorization to read runs.")
    with pytest.raises(MlflowException, match="authorization"):
        client.get_experiment_by_name(EXPERIMENT)


def test_a_delayed_mlflow_answer_holds_only_its_own_request(frozen_emu, client):
    import threading
    import time

    emu = frozen_emu
    put_pipeline(emu, "ft-slow")
    emu.faults.add("mlflow.*", "delay", times=1, seconds=1.5)
    slow = threading.Thread(target=client.get_experiment_by_name, args=(EXPERIMENT,))
    slow.start()
    time.sleep(0.2)  # the MLflow request is now waiting on its delay
    assert slow.is_alive()
    ml = emu.ml_client()
    assert ml.jobs.get("ft-slow").status == "NotStarted"  # answered meanwhile: the delay holds no lock
    slow.join(timeout=10)
    assert not slow.is_alive()
    operations = [r.operation for r in emu.requests]
    assert operations[-1] == "mlflow.experiments.getByName" and "jobs.get" in operations  # logged when answered


def test_root_run_tag_depth_leaves_mlflow_root_run_id_off_deeper_runs(frozen_emu, client):
    """finetune.testing's stand-in for a workspace that sets only mlflow.parentRunId below the pipeline's nodes."""
    emu = frozen_emu
    emu.service.root_run_tag_depth = 1
    put_pipeline(emu, "ft-shallow")
    running(emu, 0.5)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    assert [r.info.run_name for r in children(client, "ft-shallow")] == ["finetune_node"]
    [node] = children(client, "ft-shallow")
    steps = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{node.info.run_id}'")
    assert {r.info.run_name for r in steps} <= set(steps_of_component()) and steps
    assert all("mlflow.rootRunId" not in r.data.tags for r in steps)
    emu.service.root_run_tag_depth = 0
    assert children(client, "ft-shallow") == []
