"""Faults, latency, simulated time and the request log, observed through the real SDK where it matters."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError

from finetune.testing import AzureMLEmulator, UnknownHostError


def ws_client(emu):
    from azure.ai.ml import MLClient

    return MLClient(emu.credential, emu.subscription_id, emu.resource_group, emu.workspace_name,
                    transport=emu.transport, polling_interval=0.001, enable_telemetry=False)


def arm(emu, path: str) -> str:
    return (f"https://management.azure.com/subscriptions/{emu.subscription_id}/resourceGroups/{emu.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{emu.workspace_name}{path}"
            "?api-version=2024-10-01-preview")


def put_job(emu, name: str) -> None:
    body = {"properties": {"jobType": "Command", "command": "python train.py", "experimentName": "exp",
                           "environmentId": "azureml:env:1", "inputs": {}, "outputs": {}}}
    r = emu.transport.session.put(arm(emu, f"/jobs/{name}"), json=body, headers={"Authorization": "Bearer x"})
    assert r.status_code == 201, r.text


def aml_compute(name="gpu", size="Standard_NC24ads_A100_v4"):
    from azure.ai.ml.entities import AmlCompute

    return AmlCompute(name=name, size=size, max_instances=1)


def test_throttle_and_503_are_retried_by_the_sdk(emu):
    ml = ws_client(emu)
    emu.faults.add("workspaces.get", "throttle", times=1, retry_after=0.01)
    emu.faults.add("workspaces.get", "unavailable", times=1, retry_after=0.01)
    ws = ml.workspaces.get(emu.workspace_name)
    assert ws.location == emu.location
    statuses = [r.status for r in emu.requests if r.operation == "workspaces.get"]
    assert statuses == [429, 503, 200]
    throttled = emu.service.log.find(operation="workspaces.get")[0]
    assert throttled.api_version == "2024-10-01-preview"


def test_out_of_quota_fault_and_real_quota(emu):
    ml = ws_client(emu)
    emu.faults.add("computes.create", "quota")
    with pytest.raises(HttpResponseError, match="quota"):
        ml.compute.begin_create_or_update(aml_compute()).result()
    assert emu.state["computes"] == {}
    emu.set_quota("StandardNCADSA100v4Family", 0)
    with pytest.raises(HttpResponseError, match="OutOfQuota|quota"):
        ml.compute.begin_create_or_update(aml_compute()).result()
    emu.set_quota("StandardNCADSA100v4Family", 24)
    assert ml.compute.begin_create_or_update(aml_compute()).result().provisioning_state == "Succeeded"
    assert len(list(ml.compute.list_usage())) > 0
    assert [r.status for r in emu.requests if r.operation == "usages.list"] == [200]
    url = (f"https://management.azure.com/subscriptions/{emu.subscription_id}/providers/"
           f"Microsoft.MachineLearningServices/locations/{emu.location}/usages?api-version=2023-08-01-preview")
    usage = {u["name"]["value"]: u for u in emu.transport.session.get(url).json()["value"]}
    assert (usage["StandardNCADSA100v4Family"]["currentValue"], usage["StandardNCADSA100v4Family"]["limit"]) == (24, 24)


def test_endpoint_name_taken_and_sku_not_allowed(emu):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    ml = ws_client(emu)
    emu.faults.add("onlineEndpoints.create", "name_taken")
    with pytest.raises(HttpResponseError) as err:
        ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="taken-name", auth_mode="key")).result()
    assert err.value.status_code == 409
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="free-name", auth_mode="key")).result()
    dep = ManagedOnlineDeployment(name="blue", endpoint_name="free-name",
                                  model="azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15",
                                  instance_type="Standard_ND96isr_H200_v5", instance_count=1)
    with pytest.raises(HttpResponseError, match="not supported"):
        ml.online_deployments.begin_create_or_update(dep).result()


def test_deployment_fails_on_liveness_probe_with_logs(emu):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    ml = ws_client(emu)
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-live", auth_mode="key")).result()
    emu.faults.add("onlineDeployments.create", "liveness_failed")
    dep = ManagedOnlineDeployment(name="blue", endpoint_name="ep-live",
                                  model="azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15",
                                  instance_type="Standard_NC24ads_A100_v4", instance_count=1)
    with pytest.raises(HttpResponseError, match="[Ll]iveness"):
        ml.online_deployments.begin_create_or_update(dep).result()
    assert ml.online_deployments.get("blue", "ep-live").provisioning_state == "Failed"
    assert "Liveness probe failed" in ml.online_deployments.get_logs("blue", "ep-live", lines=10)


def test_job_failed_fault_surfaces_in_stream_and_run_details(emu, fast_stream):
    from azure.ai.ml.exceptions import JobException

    ml = ws_client(emu)
    emu.faults.add("jobs.create", "job_failed", message="CUDA out of memory", logs="Traceback: OOM at step 12\n")
    put_job(emu, "job-fails")
    with pytest.raises(JobException, match="CUDA out of memory"):
        ml.jobs.stream("job-fails")
    assert ml.jobs.get("job-fails").status == "Failed"
    log_blob = next(b for b in emu.blobs("azureml") if "dcid.job-fails" in b)  # the artifact store's container
    assert b"OOM at step 12" in emu.blob(log_blob, "azureml")
    put_job(emu, "job-ok")  # the fault fired once only
    ml.jobs.stream("job-ok")
    assert ml.jobs.get("job-ok").status == "Completed"
    assert emu.job_metrics("job-ok") == {"job-ok": {}}  # a command job is one run; this one logged nothing


def test_job_phases_follow_the_simulated_clock(frozen_emu):
    emu = frozen_emu
    put_job(emu, "timed")
    d = emu.durations
    seen = [emu.job_status("timed")]
    emu.advance(d.job_not_started)
    seen.append(emu.job_status("timed"))
    emu.advance(d.job_queued)
    seen.append(emu.job_status("timed"))
    emu.advance(d.job_running - 1)
    seen.append(emu.job_status("timed"))
    emu.advance(1)
    seen.append(emu.job_status("timed"))
    assert seen == ["NotStarted", "Queued", "Running", "Running", "Completed"]
    assert d.job_not_started + d.job_queued + d.job_running == pytest.approx(3600)


def test_slow_fault_stretches_an_operation(frozen_emu):
    emu = frozen_emu
    emu.faults.add("computes.create", "slow", factor=5)
    r = emu.transport.session.put(arm(emu, "/computes/slowpoke"), headers={"Authorization": "Bearer x"},
                                  json={"properties": {"computeType": "AmlCompute",
                                                       "properties": {"vmSize": "Standard_DS3_v2"}}})
    assert r.status_code == 201
    poll = r.headers["Azure-AsyncOperation"]
    emu.advance(emu.durations.compute_create)
    assert emu.transport.session.get(poll).json()["status"] == "InProgress"
    emu.advance(emu.durations.compute_create * 4)
    assert emu.transport.session.get(poll).json()["status"] == "Succeeded"


def test_acceleration_makes_an_hour_of_training_take_well_under_a_second():
    with AzureMLEmulator(acceleration=36_000) as emu:
        put_job(emu, "fast")
        started = time.monotonic()
        while emu.job_status("fast") != "Completed":
            time.sleep(0.01)
            assert time.monotonic() - started < 1.0
        assert emu.clock.now() - emu.state["jobs"]["fast"]["emulator"]["created"] >= 3600


def test_latency_injection_applies_per_request(emu):
    emu.latency = 0.05
    started = time.monotonic()
    for _ in range(4):
        emu.transport.session.get(arm(emu, ""))
    assert time.monotonic() - started >= 0.2


def test_write_count_counts_state_changes_only(emu):
    ml = ws_client(emu)
    ml.compute.begin_create_or_update(aml_compute("cpu", "Standard_DS3_v2")).result()
    assert emu.write_count() == 1
    assert [(w.method, w.operation) for w in emu.writes()] == [("PUT", "computes.create")]
    emu.reset_log()
    ml.compute.get("cpu")
    list(ml.compute.list())
    emu.transport.session.post(arm(emu, "/datastores/workspaceblobstore/listSecrets"), json={},
                               headers={"Authorization": "Bearer x"})
    assert len(emu.requests) == 3 and emu.write_count() == 0
    assert {r.operation for r in emu.requests} >= {"computes.get", "datastores.listSecrets"}


def test_scoring_requires_a_key_from_list_keys(emu):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    ml = ws_client(emu)
    ep = ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-score", auth_mode="key")).result()
    ml.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
        name="blue", endpoint_name="ep-score", instance_type="Standard_NC24ads_A100_v4", instance_count=1,
        model="azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15")).result()
    body = {"input_data": {"input_string": [[{"role": "user", "content": "hi"}]]}}
    s = emu.transport.session
    headers = {"azureml-model-deployment": "blue"}
    assert s.post(ep.scoring_uri, json=body, headers={**headers, "Authorization": "Bearer wrong"}).status_code == 401
    key = ml.online_endpoints.get_keys("ep-score").primary_key
    ok = s.post(ep.scoring_uri, json=body, headers={**headers, "Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and "hi" in ok.json()[0]["0"]


def test_unknown_hosts_fail_immediately(emu):
    started = time.monotonic()
    with pytest.raises(UnknownHostError, match="example.com"):
        emu.transport.session.get("https://example.com/anything")
    assert time.monotonic() - started < 0.5


def test_blob_patch_is_restored_on_exit():
    import azure.ai.ml._artifacts._blob_storage_helper as helper
    import azure.ai.ml._utils._registry_utils as registry_utils

    original, original_registry = helper.BlobServiceClient, registry_utils.get_registry_client
    with AzureMLEmulator():
        assert helper.BlobServiceClient is not original
        with AzureMLEmulator():
            assert helper.BlobServiceClient is not original
        assert helper.BlobServiceClient is not original
    assert helper.BlobServiceClient is original
    assert registry_utils.get_registry_client is original_registry


def test_registry_layouts(emu):
    import ast

    from azure.ai.ml import MLClient

    reg = MLClient(emu.credential, registry_name="azureml", transport=emu.transport, enable_telemetry=False)
    versions = sorted(int(m.version) for m in reg.models.list("Phi-3-mini-4k-instruct"))
    assert versions == [13, 14, 15]
    with AzureMLEmulator(phi3_layout="system_metadata") as other:
        reg2 = MLClient(other.credential, registry_name="azureml", transport=other.transport,
                        enable_telemetry=False)
        latest = reg2.models.get("Phi-3-mini-4k-instruct", label="latest")
        assert "finetune_compute_allow_list" not in latest.tags
        assert ast.literal_eval(latest.tags["model_specific_defaults"])["apply_lora"] == "true"
        older = reg2.models.get("Phi-3-mini-4k-instruct", version="14")
        assert "Standard_NC24ads_A100_v4" in ast.literal_eval(older.tags["finetune_compute_allow_list"])


def test_long_workspace_lists_page_with_a_next_link_the_sdk_follows(emu):
    for name in ("a-data", "b-data", "c-data"):
        uri = f"azureml://datastores/workspaceblobstore/paths/{name}"
        body = {"properties": {"dataType": "uri_file", "dataUri": uri}}
        r = emu.transport.session.put(arm(emu, f"/data/{name}/versions/1"), json=body,
                                      headers={"Authorization": "Bearer x"})
        assert r.status_code == 201, r.text
    ml = ws_client(emu)
    assert sorted(d.name for d in ml.data.list()) == ["a-data", "b-data", "c-data"]  # one page by default
    emu.service.page_size = 2
    pages = ml.data.list().by_page()
    assert len(list(next(pages))) == 2 and pages.continuation_token
    assert sorted(d.name for d in ml.data.list()) == ["a-data", "b-data", "c-data"]
