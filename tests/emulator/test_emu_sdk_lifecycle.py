"""The seed notebook's lifecycle, written directly against the real azure-ai-ml SDK, run against the emulator."""

from __future__ import annotations

import ast
import json
import time


def _write_data(tmp_path):
    rows = [
        {"prompt": f"q{i}", "prompt_id": f"{i:064x}",
         "messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(5)
    ]
    train = tmp_path / "train_sft.jsonl"
    test = tmp_path / "test_sft.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows[:4]) + "\n")
    test.write_text(json.dumps(rows[4]) + "\n")
    return train, test


def test_notebook_lifecycle_through_the_sdk(emu, tmp_path, fast_stream):
    from azure.ai.ml import Input, MLClient
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.entities import (
        AmlCompute,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
        OnlineRequestSettings,
        ProbeSettings,
    )

    started = time.monotonic()
    ws = MLClient(emu.credential, emu.subscription_id, emu.resource_group, emu.workspace_name,
                  transport=emu.transport, polling_interval=0.001, enable_telemetry=False)
    reg = MLClient(emu.credential, registry_name="azureml", transport=emu.transport, polling_interval=0.001,
                   enable_telemetry=False)

    # 1. model by label, tags as the notebook reads them
    model = reg.models.get("Phi-3-mini-4k-instruct", label="latest")
    assert model.version == "15"
    assert model.id == "azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15"
    allow = ast.literal_eval(model.tags["finetune_compute_allow_list"])
    defaults = ast.literal_eval(model.tags["model_specific_defaults"])
    assert "Standard_NC24ads_A100_v4" in allow
    assert defaults["learning_rate"] == "5e-6"

    # 2. compute create, then list_sizes for the GPU count
    size = "Standard_NC24ads_A100_v4"
    compute = AmlCompute(name="gpu-cluster-big", size=size, tier="Dedicated", max_instances=2)
    compute = ws.compute.begin_create_or_update(compute).result()
    assert compute.provisioning_state == "Succeeded"
    assert compute.size.lower() in [s.lower() for s in allow]
    gpus = [s.gpus for s in ws.compute.list_sizes() if s.name.lower() == compute.size.lower()]
    assert gpus == [1]

    # 3. registry component, pipeline with local uri_file inputs
    component = reg.components.get(name="chat_completion_pipeline", label="latest")
    assert component.version == "0.0.82"
    assert "mlflow_model_folder" in component.outputs and "train_file_path" in component.inputs
    train, test = _write_data(tmp_path)
    params = {k: v for k, v in defaults.items() if k in component.inputs}

    @pipeline(name="phi3-ultrachat")
    def create_pipeline():
        node = component(
            mlflow_model_path=model.id,
            compute_model_import=compute.name,
            compute_preprocess=compute.name,
            compute_finetune=compute.name,
            compute_model_evaluation=compute.name,
            train_file_path=Input(type="uri_file", path=str(train)),
            test_file_path=Input(type="uri_file", path=str(test)),
            number_of_gpu_to_use_finetuning=gpus[0],
            **params,
        )
        return {"trained_model": node.outputs.mlflow_model_folder}

    pipeline_object = create_pipeline()
    pipeline_object.settings.force_rerun = True
    pipeline_object.settings.continue_on_step_failure = False
    job = ws.jobs.create_or_update(pipeline_object, experiment_name="chat_completion_Phi-3-mini-4k-instruct")
    assert job.status in ("NotStarted", "Queued", "Running", "Starting")
    # the local files were uploaded into the emulated storage
    uploaded = [b for b in emu.blobs() if b.startswith("LocalUpload/")]
    assert any(b.endswith("train_sft.jsonl") for b in uploaded)
    assert emu.blob(next(b for b in uploaded if b.endswith("train_sft.jsonl"))) == train.read_bytes()

    ws.jobs.stream(job.name)
    job = ws.jobs.get(job.name)
    assert job.status == "Completed"
    assert emu.job_metrics(job.name)["chat_completion_finetune"]["train_loss"] > 0  # logged to MLflow

    # 4. model from the job output
    registered = ws.models.create_or_update(Model(
        path=f"azureml://jobs/{job.name}/outputs/trained_model", type=AssetTypes.MLFLOW_MODEL,
        name="Phi-3-mini-4k-instruct-ultrachat-200k", version="1"))
    assert registered.version == "1"

    # 5. endpoint, deployment, traffic
    endpoint = ManagedOnlineEndpoint(name="ultrachat-completion-1", auth_mode="key")
    endpoint = ws.online_endpoints.begin_create_or_update(endpoint).result()
    assert endpoint.provisioning_state == "Succeeded"
    deployment = ManagedOnlineDeployment(
        name="demo", endpoint_name=endpoint.name, model=registered.id, instance_type="STANDARD_NC4AS_T4_V3",
        instance_count=1, liveness_probe=ProbeSettings(initial_delay=600),
        request_settings=OnlineRequestSettings(request_timeout_ms=90000))
    deployment = ws.online_deployments.begin_create_or_update(deployment).result()
    assert deployment.provisioning_state == "Succeeded"
    endpoint.traffic = {"demo": 100}
    endpoint = ws.online_endpoints.begin_create_or_update(endpoint).result()
    assert ws.online_endpoints.get(endpoint.name).traffic == {"demo": 100}

    # 6. invoke
    request = tmp_path / "sample_score.json"
    request.write_text(json.dumps({"input_data": {"input_string": [[{"role": "user", "content": "hello there"}]],
                                                  "parameters": {"max_new_tokens": 20}}, "params": {}}))
    answer = ws.online_endpoints.invoke(endpoint_name=endpoint.name, deployment_name="demo",
                                        request_file=str(request))
    assert "hello there" in json.loads(answer)[0]["0"]

    # 7. delete
    ws.online_endpoints.begin_delete(name=endpoint.name).result()
    ws.compute.begin_delete(compute.name).result()
    assert emu.state["endpoints"] == {} and emu.state["computes"] == {}
    assert time.monotonic() - started < 30
