"""Run history through the REAL SDK: a pipeline's child runs (jobs.list(parent_job_name), jobs.get of a child) are the
runs MLflow shows for it, and jobs.download fetches the files a run left in blob storage: its logs from the artifact
store and its outputs where its command wrote them."""

from __future__ import annotations

import pytest
import yaml

PIPELINE = {
    "type": "pipeline",
    "compute": "azureml:cpu",
    "inputs": {"count": 10},
    "outputs": {"greeting": {"mode": "mount"}},
    "jobs": {
        "hello": {"type": "command", "environment": "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33",
                  "command": 'echo "Hello World" > ${{outputs.out}}/hello.txt && echo said hello',
                  "outputs": {"out": "${{parent.outputs.greeting}}"}},
        "count": {"type": "command", "environment": "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:33",
                  "command": "echo ${{inputs.n}} > ${{outputs.n}}/n && echo more >> ${{outputs.n}}/n && "
                             "python train.py --out ${{outputs.model}}",
                  "inputs": {"n": "${{parent.inputs.count}}"},
                  "outputs": {"n": {"type": "uri_folder"}, "model": {"type": "uri_folder"}}},
    },
}


def with_cluster(emu):
    """A workspace client, and the cluster the pipeline runs on."""
    from azure.ai.ml.entities import AmlCompute

    client = emu.ml_client(polling_interval=0.001)
    poller = client.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_DS3_v2", max_instances=1))
    emu.advance(emu.durations.compute_create)
    poller.result()
    return client


@pytest.fixture
def ml(emu):
    return with_cluster(emu)


def submit(emu, ml, tmp_path, name: str) -> str:
    from azure.ai.ml import load_job

    source = tmp_path / "pipeline.yml"
    source.write_text(yaml.safe_dump(PIPELINE))
    job = ml.jobs.create_or_update(load_job(source, params_override=[{"name": name}]))
    emu.advance(emu.durations.job_not_started + emu.durations.job_queued + emu.durations.job_running)
    assert ml.jobs.get(job.name).status == "Completed"
    return job.name


def mlflow_children(emu, ml, job: str):
    """The job's child runs as the MLflow client finds them (tags.mlflow.parentRunId)."""
    from mlflow import MlflowClient

    uri = ml.workspaces.get(emu.workspace_name).mlflow_tracking_uri.replace("azureml://", "https://", 1)
    token = emu.credential.get_token("https://management.azure.com/.default").token
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_TOKEN", token)
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(ml.jobs.get(job).experiment_name)
        return client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{job}'")


def test_child_runs_are_the_pipelines_mlflow_runs(emu, ml, tmp_path):
    from azure.ai.ml.entities import Job

    name = submit(emu, ml, tmp_path, "hello-pipeline")
    children = list(ml.jobs.list(parent_job_name=name))
    assert sorted(c.display_name for c in children) == ["count", "hello"]
    in_mlflow = {r.info.run_id: r.info.run_name for r in mlflow_children(emu, ml, name)}
    assert {c.name: c.display_name for c in children} == in_mlflow  # one list of runs, two views
    hello = next(c for c in children if c.display_name == "hello")
    got = ml.jobs.get(hello.name)  # the jobs API knows the name only; the SDK reads the rest from run history
    assert isinstance(got, Job) and got.name == hello.name and got.status == "Completed"
    assert got.properties["azureml.pipeline"] == name
    assert [r.operation for r in emu.requests if hello.name in r.path][-2:] == ["jobs.get", "runs.get"]
    assert list(ml.jobs.list(parent_job_name=hello.name)) == []  # a command node has no children


def test_download_fetches_what_the_runs_left_in_storage(emu, ml, tmp_path):
    name = submit(emu, ml, tmp_path, "download-pipeline")
    children = {c.display_name: c.name for c in ml.jobs.list(parent_job_name=name)}

    ml.jobs.download(children["hello"], download_path=tmp_path / "hello")
    ml.jobs.download(children["hello"], download_path=tmp_path / "hello", output_name="out")
    hello = tmp_path / "hello"
    assert (hello / "named-outputs" / "out" / "hello.txt").read_text() == "Hello World\n"
    assert (hello / "artifacts" / "user_logs" / "std_log.txt").read_text() == "said hello\n"
    assert children["hello"] in (hello / "artifacts" / "logs" / "azureml" / "executionlogs.txt").read_text()

    ml.jobs.download(children["count"], download_path=tmp_path / "count", output_name="n")
    assert (tmp_path / "count" / "named-outputs" / "n" / "n").read_text() == "10\nmore\n"  # the bound input's value
    ml.jobs.download(children["count"], download_path=tmp_path / "count", output_name="model")
    assert not any((tmp_path / "count" / "named-outputs").glob("model/*"))  # python wrote nothing the emulator knows

    ml.jobs.download(name, download_path=tmp_path / "pipeline")
    assert name in (tmp_path / "pipeline" / "artifacts" / "logs" / "azureml" / "executionlogs.txt").read_text()
    # where the real service keeps them: logs in the artifact store, outputs in the default store
    assert f"ExperimentRun/dcid.{children['hello']}/logs/azureml/executionlogs.txt" in emu.blobs("azureml")
    assert f"azureml/{children['hello']}/out/hello.txt" in emu.blobs()


def test_run_data_names_output_assets_that_resolve_to_where_the_files_are(emu, ml, tmp_path):
    """rundata's outputs are data assets; the data plane resolves them to the run's folders (the pipeline's output
    to the node output bound to it), read-only requests both."""
    name = submit(emu, ml, tmp_path, "assets-pipeline")
    children = {c.display_name: c.name for c in ml.jobs.list(parent_job_name=name)}
    hello = ml.jobs._runs_operations.get_run_data(children["hello"]).run_metadata
    assert set(hello.outputs) == {"default", "out"} and hello.parent_run_id == name
    pipeline = ml.jobs._runs_operations.get_run_data(name).run_metadata
    assert pipeline.outputs["greeting"].asset_id == hello.outputs["out"].asset_id
    ids = [hello.outputs["default"].asset_id, hello.outputs["out"].asset_id, "azureml://no/such/asset"]
    resolved = ml.jobs._dataset_dataplane_operations.get_batch_dataset_uris(ids).values_property
    assert set(resolved) == set(ids[:2])
    assert resolved[ids[0]].uri.endswith(f"/datastores/workspaceartifactstore/paths/ExperimentRun/dcid."
                                         f"{children['hello']}/")
    assert resolved[ids[1]].uri.endswith(f"/datastores/workspaceblobstore/paths/azureml/{children['hello']}/out/")
    assert not [r for r in emu.requests if r.operation in ("runs.rundata", "dataversions.batchGetResolvedUris")
                and r.is_write]


def test_unknown_runs_and_unstarted_children_are_not_found(frozen_emu, tmp_path):
    from azure.ai.ml import load_job
    from azure.core.exceptions import ResourceNotFoundError

    emu = frozen_emu
    ml = with_cluster(emu)
    source = tmp_path / "pipeline.yml"
    source.write_text(yaml.safe_dump(PIPELINE))
    job = ml.jobs.create_or_update(load_job(source, params_override=[{"name": "not-yet"}]))
    assert list(ml.jobs.list(parent_job_name=job.name)) == []  # queued: no child run exists yet
    [planned] = [r["run_id"] for r in emu.state["jobs"]["not-yet"]["emulator"]["runs"] if r["name"] == "hello"]
    with pytest.raises(ResourceNotFoundError):
        ml.jobs.get(planned)
    with pytest.raises(ResourceNotFoundError):
        ml.jobs._runs_operations.get_run("no-such-run")


def test_a_deterministic_node_reuses_an_earlier_completed_run(emu, ml, tmp_path):
    first = submit(emu, ml, tmp_path, "first")
    second = submit(emu, ml, tmp_path, "second")
    earlier = {c.display_name: c for c in ml.jobs.list(parent_job_name=first)}
    reused = {c.display_name: c for c in ml.jobs.list(parent_job_name=second)}
    assert all(c.properties.get("azureml.isreused") is None for c in earlier.values())
    hello = reused["hello"]
    assert hello.properties["azureml.isreused"] == "true" and hello.status == "Completed"
    assert hello.properties["azureml.reusedrunid"] == earlier["hello"].name
    assert hello.properties["azureml.reusedpipelinerunid"] == first
    # its download is the earlier run's files (the SDK follows azureml.reusedrunid)
    ml.jobs.download(hello.name, download_path=tmp_path / "reused", output_name="out")
    assert (tmp_path / "reused" / "named-outputs" / "out" / "hello.txt").read_text() == "Hello World\n"
    assert not [b for b in emu.blobs() if hello.name in b]  # the reused run wrote nothing of its own
