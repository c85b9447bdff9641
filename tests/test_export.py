"""`finetune export SPEC --to azure-cli DIR`: the `az ml` files load with the SDK's own loaders and say what the
planner's graph says; what the graph does not know offline fails with one line; the local target is refused."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from finetune.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "azureml" / "phi3-emulated.yaml"
WORKSPACE = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "AZURE_RESOURCE_GROUP": "rg-ft",
             "AZUREML_WORKSPACE_NAME": "ws-ft"}
SCHEMAS = {"compute.yaml": "amlCompute", "data-train.yaml": "data", "data-test.yaml": "data",
           "job.yaml": "pipelineJob", "model.yaml": "model", "endpoint.yaml": "managedOnlineEndpoint",
           "deployment-demo.yaml": "managedOnlineDeployment"}


@pytest.fixture(autouse=True)
def _env(isolated_env, monkeypatch):
    for name in WORKSPACE:
        monkeypatch.delenv(name, raising=False)


def workdir(tmp_path: Path, *, pin: bool) -> Path:
    """The emulated spec and its data copied as tests/azureml/conftest.py's workdir fixture does; `pin` pins the
    base model (version 15) and the component (0.0.82) in the copy."""
    shutil.copytree(ROOT / "tests" / "fixtures" / "ultrachat-mini", tmp_path / "data")
    text = SPEC.read_text().replace("path: ../fixtures/ultrachat-mini", "path: data")
    if pin:
        text = re.sub(r"\n  label: latest[^\n]*", "\n  version: 15", text, count=1)
        text = text.replace("    label: latest", "    version: 0.0.82")
        assert "label:" not in text
    (tmp_path / "spec.yaml").write_text(text)
    return tmp_path / "spec.yaml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def planner_graph(spec: Path):
    """The graph `finetune plan --offline` builds for the spec (lock applied, offline facts, prepared data)."""
    from finetune.dataprep import prepare_data
    from finetune.graph import build_graph
    from finetune.plan.planner import offline_facts
    from finetune.session import offline_target
    from finetune.spec.load import load_spec
    from finetune.workflow import with_lock

    loaded = with_lock(load_spec(spec))
    facts = offline_facts(loaded, prepare_data(loaded).hashes(), offline_target(loaded)[0])
    return build_graph(loaded.spec, facts)


def test_offline_export_loads_with_the_sdk_and_matches_the_graph(tmp_path, capsys, monkeypatch):
    from azure.ai.ml import load_compute, load_data, load_job, load_model, load_online_deployment, load_online_endpoint

    for name, value in WORKSPACE.items():
        monkeypatch.setenv(name, value)
    spec = workdir(tmp_path, pin=True)
    out = tmp_path / "az"
    code, stdout, err = run(capsys, "export", str(spec), "--to", "azure-cli", str(out), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["mode"] == "offline" and set(SCHEMAS) | {"README.md"} == set(report["files"])
    graph = planner_graph(spec)
    r = graph.resources

    for name, schema in SCHEMAS.items():
        first = (out / name).read_text().splitlines()[0]
        assert first == f"$schema: https://azuremlschemas.azureedge.net/latest/{schema}.schema.json"

    compute, want = load_compute(out / "compute.yaml"), r["compute.gpu-cluster-big"].desired
    assert (compute.type, compute.name, compute.size, compute.tier) == ("amlcompute", want["name"], want["size"],
                                                                        want["tier"])
    assert (compute.min_instances, compute.max_instances, compute.idle_time_before_scale_down) == (
        want["min_instances"], want["max_instances"], want["idle_time_before_scale_down"])
    assert compute.tags["finetune.fingerprint"] == r["compute.gpu-cluster-big"].fingerprint

    for role in ("train", "test"):
        data, want = load_data(out / f"data-{role}.yaml"), r[f"data.{role}"].desired
        assert (data.name, data.version, data.type) == (want["name"], want["version"], "uri_file")
        assert hashlib.sha256(Path(data.path).read_bytes()).hexdigest() == want["sha256"]  # the prepared file
    assert not (out / "data-sample.yaml").exists()  # the smoke-test sample stays local, as in apply

    job, want = load_job(out / "job.yaml"), r["job.finetune"].desired
    assert (job.type, job.name, job.experiment_name, job.display_name) == (
        "pipeline", want["name"], want["experiment"], want["display_name"])
    assert (job.settings.force_rerun, job.settings.continue_on_step_failure) == (False, False)
    assert job.tags["finetune.fingerprint"] == r["job.finetune"].fingerprint
    assert json.loads(job.properties["finetune.inputs"])["parameters"] == want["parameters"]
    node = job.jobs["chat_completion_pipeline"]
    assert node.component == "azureml://registries/azureml/components/chat_completion_pipeline/versions/0.0.82"
    inputs = {name: getattr(value, "_data", value) for name, value in node.inputs.items()}
    assert inputs["mlflow_model_path"]["path"] == want["model"] == \
        "azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15"
    for step in ("model_import", "preprocess", "finetune", "model_evaluation"):
        assert inputs[f"compute_{step}"] == "gpu-cluster-big"
    for role in ("train", "test"):
        asset = r[f"data.{role}"].desired
        assert inputs[f"{role}_file_path"]["path"].endswith(f"{asset['name']}:{asset['version']}")
    assert "validation_file_path" not in inputs
    assert {k: inputs[k] for k in want["parameters"]} == want["parameters"]
    assert inputs["num_train_epochs"] == 3 and inputs["number_of_gpu_to_use_finetuning"] == 1
    assert "trained_model" in job.outputs and "mlflow_model_folder" in node.outputs

    model, want = load_model(out / "model.yaml"), r["model.Phi-3-mini-4k-instruct-ultrachat-200k"].desired
    assert (model.name, model.type, model.path) == (want["name"], "mlflow_model", want["path"])
    assert model.path == f"azureml://jobs/{job.name}/outputs/trained_model"
    assert model.version is None  # version: auto, left to the service

    endpoint, want = load_online_endpoint(out / "endpoint.yaml"), r["endpoint.ultrachat-completion"].desired
    assert (endpoint.name, endpoint.auth_mode) == (want["name"], "key")
    assert endpoint.name.startswith("ultrachat-completion-")  # the unique suffix, from the workspace

    deployment = load_online_deployment(out / "deployment-demo.yaml")
    want = r["deployment.ultrachat-completion/demo"].desired
    assert (deployment.name, deployment.endpoint_name, deployment.instance_type, deployment.instance_count) == (
        want["name"], endpoint.name, want["sku"], want["instance_count"])
    assert str(deployment.model).endswith("Phi-3-mini-4k-instruct-ultrachat-200k@latest")
    assert deployment.liveness_probe.initial_delay == 600
    assert deployment.request_settings.request_timeout_ms == 90000
    assert "traffic: 100%" in (out / "deployment-demo.yaml").read_text()

    readme = (out / "README.md").read_text()
    order = [readme.index(f"-f {name}") for name in ("compute.yaml", "data-train.yaml", "job.yaml", "model.yaml",
                                                     "deployment-demo.yaml")]
    assert order == sorted(order)
    assert readme.index("-f deployment-demo.yaml") < readme.index(f"--name {endpoint.name} --traffic \"demo=100\"")
    assert "az configure --defaults group=rg-ft workspace=ws-ft" in readme
    assert json.loads((out / "sample-request.json").read_text())["input_data"]["parameters"]["max_new_tokens"] == 200


def test_the_lock_file_pins_what_the_spec_floats(tmp_path, capsys, monkeypatch):
    from azure.ai.ml import load_job

    from finetune.lockfile import lock_for, lock_path, write_lock
    from finetune.spec.load import load_spec

    for name, value in WORKSPACE.items():
        monkeypatch.setenv(name, value)
    spec = workdir(tmp_path, pin=False)
    loaded = load_spec(spec)
    write_lock(lock_path(loaded), lock_for(loaded, {"model": "15", "component": "0.0.82"}))
    code, _, err = run(capsys, "export", str(spec), "--to", "azure-cli", str(tmp_path / "az"))
    assert code == 0, err
    job = load_job(tmp_path / "az" / "job.yaml")
    node = job.jobs["chat_completion_pipeline"]
    assert node.component.endswith("/components/chat_completion_pipeline/versions/0.0.82")
    assert node.inputs["mlflow_model_path"]._data["path"].endswith("/models/Phi-3-mini-4k-instruct/versions/15")
    assert job.name == planner_graph(spec).resources["job.finetune"].desired["name"]


def test_a_floating_label_without_a_lock_file_fails_with_one_line(tmp_path, capsys):
    spec = workdir(tmp_path, pin=False)
    code, _, err = run(capsys, "export", str(spec), "--to", "azure-cli", str(tmp_path / "az"))
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Phi-3-mini-4k-instruct floats (label: latest)" in lines[0] and "finetune lock spec.yaml" in lines[0]
    assert "--online" in lines[0]
    assert not (tmp_path / "az").exists()  # nothing written


def test_an_endpoint_name_from_an_unknown_workspace_fails_with_one_line(tmp_path, capsys):
    spec = workdir(tmp_path, pin=True)
    code, _, err = run(capsys, "export", str(spec), "--to", "azure-cli", str(tmp_path / "az"))
    assert code == 1
    assert "endpoint.unique_suffix" in err and "AZUREML_WORKSPACE_NAME" in err
    assert not (tmp_path / "az").exists()


def test_emulate_resolves_labels_through_plan_against_target(tmp_path, capsys):
    from azure.ai.ml import load_job

    spec = workdir(tmp_path, pin=False)
    code, out, err = run(capsys, "plan", str(spec), "--emulate", "--json")
    assert code == 0, err
    planned = {c["address"]: c["after"] for c in json.loads(out)["changes"]}
    code, _, err = run(capsys, "export", str(spec), "--to", "azure-cli", str(tmp_path / "az"), "--emulate")
    assert code == 0, err
    job = load_job(tmp_path / "az" / "job.yaml")
    assert job.name == planned["job.finetune"]["name"]
    assert "/versions/" in job.jobs["chat_completion_pipeline"].component
    assert f"az ml online-endpoint update --name {planned['endpoint.ultrachat-completion']['name']}" in (
        tmp_path / "az" / "README.md").read_text()


def test_the_local_target_is_refused(tmp_path, capsys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    spec = tmp_path / "examples" / "local-quickstart.yaml"
    code, _, err = run(capsys, "export", str(spec), "--to", "azure-cli", str(tmp_path / "az"))
    assert code == 1
    assert "this spec targets local" in err and "target.kind: azureml" in err
    assert not (tmp_path / "az").exists()
