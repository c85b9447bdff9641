"""Response shapes, status codes and LRO headers of the emulator compared with real recordings and REST examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "azureml-api"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIX / name).read_text())


def entries(name: str, method: str, contains: str) -> list[dict[str, Any]]:
    return [e for e in load(name)["Entries"] if e["RequestMethod"] == method and contains in e["RequestUri"]]


def missing(expected: Any, actual: Any, path: str = "", depth: int = 2) -> list[str]:
    """Keys present in the recorded body but absent from the emulator's (recursing into dicts)."""
    out: list[str] = []
    if not isinstance(expected, dict) or depth < 0:
        return out
    if not isinstance(actual, dict):
        return [path or "<root>"]
    for key, value in expected.items():
        if key not in actual:
            out.append(f"{path}.{key}")
        elif isinstance(value, dict) and value and actual[key] is not None:
            out.extend(missing(value, actual[key], f"{path}.{key}", depth - 1))
    return out


class Http:
    def __init__(self, emu) -> None:
        self.session = emu.transport.session
        self.emu = emu
        self.ws = (f"https://management.azure.com/subscriptions/{emu.subscription_id}/resourceGroups/"
                   f"{emu.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/{emu.workspace_name}")

    def __call__(self, method: str, url: str, body: Any = None, api: str = "2023-08-01-preview", **kw):
        sep = "&" if "?" in url else "?"
        if "api-version" not in url and "blob.core" not in url:
            url = f"{url}{sep}api-version={api}"
        data = json.dumps(body) if body is not None else None
        headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
        headers.update(kw.pop("headers", {}))
        return self.session.request(method, url, data=data, headers=headers, **kw)


@pytest.fixture
def http(frozen_emu):
    return Http(frozen_emu)


def test_compute_create_poll_get_delete_match_the_recording(http, frozen_emu):
    rec_put = entries("compute__test_aml_compute_create_and_delete.json", "PUT", "/computes/")[0]
    body = rec_put["RequestBody"]
    body["properties"]["properties"]["vmSize"] = "Standard_NC4as_T4_v3"
    r = http("PUT", http.ws + "/computes/cpu1", body)
    assert r.status_code == rec_put["StatusCode"] == 201
    assert "/computeOperationsStatus/" in r.headers["Azure-AsyncOperation"]
    assert "Retry-After" not in r.headers  # a non-integer one on the initial PUT breaks the SDK
    assert missing(rec_put["ResponseBody"], r.json()) == []
    assert r.json()["properties"]["provisioningState"] == "Creating"

    polls = entries("compute__test_aml_compute_create_and_delete.json", "GET", "computeOperationsStatus")
    first = http("GET", r.headers["Azure-AsyncOperation"])
    assert first.status_code == 200 and set(first.json()) == set(polls[0]["ResponseBody"]) == {"status"}
    frozen_emu.advance(frozen_emu.durations.compute_create)
    done = http("GET", r.headers["Azure-AsyncOperation"]).json()
    assert done == polls[1]["ResponseBody"] == {"status": "Succeeded", "percentComplete": 100.0}

    rec_get = [e for e in entries("compute__test_aml_compute_create_and_delete.json", "GET", "/computes/")
               if e["ResponseBody"].get("properties", {}).get("provisioningState") == "Succeeded"][0]
    got = http("GET", http.ws + "/computes/cpu1").json()
    assert missing(rec_get["ResponseBody"], got, depth=1) == []
    assert got["properties"]["provisioningState"] == "Succeeded"

    rec_del = entries("compute__test_aml_compute_create_and_delete.json", "DELETE", "/computes/")[0]
    d = http("DELETE", http.ws + "/computes/cpu1?underlyingResourceAction=Delete")
    assert d.status_code == rec_del["StatusCode"] == 202
    assert d.content == b"" and d.headers["Content-Length"] == "0"
    example = load("examples/2025-12-01/Compute/delete.json")["responses"]["202"]["headers"]
    assert set(example) <= set(d.headers)


def test_online_endpoint_create_and_poll_match_the_recording(http, frozen_emu):
    rec = load("online_endpoint__test_online_endpoint_e2e__excerpt.json")["Entries"]
    ws_rec, put_rec, poll_rec = rec[0], rec[1], rec[2]
    ws = http("GET", http.ws, api="2024-10-01-preview").json()
    assert missing(ws_rec["ResponseBody"], ws, depth=0) == []
    assert ws["properties"]["discoveryUrl"] and ws["location"]

    body = put_rec["RequestBody"]
    body["properties"]["authMode"] = "Key"  # the recording used AMLToken, which has no keys to list
    r = http("PUT", http.ws + "/onlineEndpoints/online-ept-1", body, api="2022-02-01-preview")
    assert r.status_code == put_rec["StatusCode"] == 201
    for header in ("Azure-AsyncOperation", "Location", "x-ms-async-operation-timeout"):
        assert header in r.headers
    assert "/mfeOperationsStatus/" in r.headers["Azure-AsyncOperation"]
    assert "api-version=2022-02-01-preview" in r.headers["Azure-AsyncOperation"]  # echoes the request's
    assert missing(put_rec["ResponseBody"], r.json()) == []
    poll = http("GET", r.headers["Azure-AsyncOperation"]).json()
    assert set(poll) == set(poll_rec["ResponseBody"])
    assert poll["endTime"] == "0001-01-01T00:00:00+00:00"
    frozen_emu.advance(frozen_emu.durations.endpoint_create)
    final = http("GET", r.headers["Azure-AsyncOperation"]).json()
    assert final["status"] == rec[3]["ResponseBody"]["status"] == "Succeeded"

    keys = http("POST", http.ws + "/onlineEndpoints/online-ept-1/listKeys")
    example = load("examples/2025-06-01/Workspace/OnlineEndpoint/listKeys.json")["responses"]["200"]["body"]
    assert keys.status_code == 200 and set(keys.json()) == set(example)

    d = http("DELETE", http.ws + "/onlineEndpoints/online-ept-1")
    ex = load("examples/2025-12-01/Workspace/OnlineEndpoint/delete.json")["responses"]
    assert str(d.status_code) in ex and set(ex["202"]["headers"]) <= set(d.headers)
    assert d.headers["Retry-After"].isdigit()  # integer on the initial DELETE


def test_deployment_shapes_match_the_examples(http, frozen_emu):
    http("PUT", http.ws + "/onlineEndpoints/ep-one", {"location": "eastus", "properties": {"authMode": "Key"}})
    frozen_emu.advance(1000)
    mv = {"properties": {"modelType": "custom_model", "modelUri": "azureml://datastores/x/paths/y"}}
    http("PUT", http.ws + "/models/m/versions/1", mv)
    body = {"location": "eastus", "sku": {"name": "Default", "capacity": 1},
            "properties": {"endpointComputeType": "Managed", "instanceType": "Standard_NC4as_T4_v3",
                           "model": http.ws.replace("https://management.azure.com", "") + "/models/m/versions/1"}}
    r = http("PUT", http.ws + "/onlineEndpoints/ep-one/deployments/blue", body, api="2023-04-01-preview")
    assert r.status_code == 201 and "Azure-AsyncOperation" in r.headers
    frozen_emu.advance(frozen_emu.durations.deployment_create)
    got = http("GET", http.ws + "/onlineEndpoints/ep-one/deployments/blue").json()
    example = load("examples/2025-12-01/OnlineDeployment/ManagedOnlineDeployment/get.json")["responses"]["200"]["body"]
    assert missing({k: example[k] for k in ("id", "name", "type", "location", "sku", "kind")}, got, depth=0) == []
    for key in ("provisioningState", "scaleSettings", "endpointComputeType", "instanceType", "model"):
        assert key in got["properties"]
    logs = http("POST", http.ws + "/onlineEndpoints/ep-one/deployments/blue/getLogs", {"tail": 10})
    ex_logs = load("examples/2025-12-01/OnlineDeployment/getLogs.json")["responses"]["200"]["body"]
    assert set(logs.json()) == set(ex_logs)
    d = http("DELETE", http.ws + "/onlineEndpoints/ep-one/deployments/blue")
    ex_del = load("examples/2025-12-01/Workspace/OnlineDeployment/delete.json")["responses"]
    assert str(d.status_code) in ex_del and set(ex_del["202"]["headers"]) <= set(d.headers)


def test_model_errors_and_versions_match_the_recording(http):
    rec = load("model__test_crud_file.json")["Entries"]
    not_found = http("GET", http.ws + "/models/nope/versions?$orderBy=createdtime%20desc")
    assert not_found.status_code == rec[0]["StatusCode"] == 404
    assert not_found.headers["x-ms-response-type"] == "error"
    err, rec_err = not_found.json()["error"], rec[0]["ResponseBody"]["error"]
    assert set(rec_err) <= set(err)
    assert err["details"][0]["code"] == rec_err["details"][0]["code"] == "ModelNotFound"

    put_rec = [e for e in rec if e["RequestMethod"] == "PUT" and "/models/" in e["RequestUri"]][0]
    r = http("PUT", http.ws + "/models/m1/versions/3", put_rec["RequestBody"])
    assert r.status_code == put_rec["StatusCode"] == 201
    assert "Location" in r.headers
    assert missing(put_rec["ResponseBody"], r.json()) == []
    listed = http("GET", http.ws + "/models/m1/versions?listViewType=ActiveOnly").json()
    assert [v["name"] for v in listed["value"]] == ["3"]


def test_datastore_and_secrets_match_the_recording(http):
    rec = load("datastore__test_blob_store.json")["Entries"]
    put_rec, get_rec, secrets_rec = rec[0], rec[1], rec[2]
    r = http("PUT", http.ws + "/datastores/test_store?skipValidation=true", put_rec["RequestBody"])
    assert r.status_code == put_rec["StatusCode"] == 201 and "Location" in r.headers
    assert "key" not in json.dumps(r.json()["properties"]["credentials"])  # secrets are never echoed
    assert missing(get_rec["ResponseBody"], http("GET", http.ws + "/datastores/test_store").json()) == []
    s = http("POST", http.ws + "/datastores/workspaceblobstore/listSecrets", secrets_rec["RequestBody"])
    assert set(s.json()) == set(secrets_rec["ResponseBody"]) and s.json()["secretsType"] == "Sas"


def test_job_submit_and_cancel_match_the_recording_and_example(http):
    rec = load("command_job__test_command_job_serverless.json")["Entries"]
    put_rec = [e for e in rec if e["RequestMethod"] == "PUT" and "/jobs/" in e["RequestUri"]][0]
    body = put_rec["RequestBody"]
    body["properties"]["inputs"] = {}
    r = http("PUT", http.ws + "/jobs/job1", body, api="2025-01-01-preview")
    assert r.status_code == put_rec["StatusCode"] == 201 and "Location" in r.headers
    expected = {k: v for k, v in put_rec["ResponseBody"].items()}
    expected["properties"] = {k: put_rec["ResponseBody"]["properties"][k]
                              for k in ("status", "services", "experimentName", "displayName", "tags", "properties",
                                        "jobType", "isArchived", "identity")}
    assert missing(expected, r.json(), depth=1) == []
    c = http("POST", http.ws + "/jobs/job1/cancel")
    example = load("examples/2025-12-01/Job/cancel.json")["responses"]
    assert str(c.status_code) in example and "Location" in c.headers


def test_registry_discovery_and_versions_match_the_recording(http):
    rec = load("registry_discovery_and_registry_model__excerpt.json")["Entries"]
    d = http("GET", "https://eastus.api.azureml.ms/registrymanagement/v1.0/registries/azureml/discovery",
             api="v1.0")
    assert d.status_code == 200 and set(d.json()) == set(rec[0]["ResponseBody"])
    base = d.json()["primaryRegionResourceProviderUri"] + "mferp/managementfrontend"
    sub, rg = d.json()["subscriptionId"], d.json()["resourceGroup"]
    url = (f"{base}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/registries/"
           f"azureml/models/Phi-3-mini-4k-instruct/versions?$orderBy=createdtime%20desc&$top=1")
    listed = http("GET", url, api="2021-10-01-dataplanepreview").json()
    assert set(listed) >= set(rec[1]["ResponseBody"])
    assert [v["name"] for v in listed["value"]] == ["15"]
    assert listed["value"][0]["id"].startswith("azureml://registries/azureml/models/")


@pytest.mark.parametrize("api", ["2021-10-01-dataplanepreview", "2022-05-01", "2024-10-01-preview", "2099-01-01"])
def test_any_api_version_is_accepted(http, api):
    assert http("GET", http.ws, api=api).status_code == 200


def test_unknown_route_is_an_arm_error(http):
    r = http("GET", http.ws + "/nonsense/thing")
    assert r.status_code == 404
    assert set(r.json()["error"]) >= {"code", "message", "details"}


def _example(path: str) -> dict[str, Any]:
    return load(f"examples/2025-12-01/{path}")


def test_datastore_secrets_are_stored_on_put_and_answered_as_the_example_and_recording_say(http):
    put = _example("Datastore/AzureBlobWAccountKey/createOrUpdate.json")
    body = put["parameters"]["body"]
    key = body["properties"]["credentials"]["secrets"]["key"] = "ZW11bGF0b3Itb25seS1rZXk="
    r = http("PUT", http.ws + "/datastores/keyed?skipValidation=true", body)
    assert str(r.status_code) in put["responses"]
    assert key not in r.text and key not in http("GET", http.ws + "/datastores/keyed").text
    assert key not in http("GET", http.ws + "/datastores").text
    # no expirable secret asked for: the stored key, in the example's shape
    plain = http("POST", http.ws + "/datastores/keyed/listSecrets", {})
    expected = _example("Datastore/listSecrets.json")["responses"]["200"]["body"]
    assert plain.status_code == 200 and set(plain.json()) == set(expected) and plain.json()["key"] == key
    # what the SDK sends ({"expirableSecret": true}): a SAS, as recorded for an account-key store
    rec = load("datastore__test_blob_store.json")["Entries"][2]
    sas = http("POST", http.ws + "/datastores/keyed/listSecrets", rec["RequestBody"]).json()
    assert set(sas) == set(rec["ResponseBody"]) and sas["secretsType"] == "Sas"
    # a new key replaces the old one; deleting forgets it
    body["properties"]["credentials"]["secrets"]["key"] = "c2Vjb25k"
    assert http("PUT", http.ws + "/datastores/keyed", body).status_code == 200
    assert http("POST", http.ws + "/datastores/keyed/listSecrets", {}).json()["key"] == "c2Vjb25k"
    http("DELETE", http.ws + "/datastores/keyed")
    assert http("POST", http.ws + "/datastores/keyed/listSecrets", {}).status_code == 404


def test_code_version_hash_lookup_upload_reference_and_put_match_the_examples(http):
    lookup = http("GET", http.ws + "/codes/fresh/versions?hash=abc&hashVersion=202208")
    assert lookup.status_code == 200 and lookup.json() == {"value": []}  # the SDK looks up before any upload
    spu = _example("Workspace/CodeVersion/createOrGetStartPendingUpload.json")
    r = http("POST", http.ws + "/codes/fresh/versions/1/startPendingUpload", spu["parameters"]["body"])
    assert r.status_code == 200 and missing(spu["responses"]["200"]["body"], r.json()) == []
    blob = r.json()["blobReferenceForConsumption"]
    assert blob["blobUri"].startswith(f"https://{http.emu.service.cfg['storage_account']}.blob.core.windows.net/")
    # each upload its own container (two folders of one name must not share blobs), named as recorded
    other = http("POST", http.ws + "/codes/fresh/versions/2/startPendingUpload", spu["parameters"]["body"]).json()
    container = blob["blobUri"].rsplit("/", 1)[1]
    assert other["blobReferenceForConsumption"]["blobUri"] != blob["blobUri"] and len(container) == 63
    put = _example("Workspace/CodeVersion/createOrUpdate.json")
    body = put["parameters"]["body"]
    body["properties"]["properties"].update({"hash_sha256": "abc", "hash_version": "202208"})
    created = http("PUT", http.ws + "/codes/fresh/versions/1", body)
    assert created.status_code == 201 and missing(put["responses"]["201"]["body"], created.json()) == []
    # the hash look-up finds it now, under any name the SDK asks with (it re-reads the hit by the id's name)
    found = http("GET", http.ws + "/codes/other-name/versions?hash=abc&hashVersion=202208").json()["value"]
    assert [v["id"].rsplit("/codes/", 1)[1] for v in found] == ["fresh/versions/1"]
    # the content of a version cannot change; its description can
    changed = dict(body["properties"], codeUri="https://elsewhere/folder")
    assert http("PUT", http.ws + "/codes/fresh/versions/1", {"properties": changed}).status_code == 409
    again = http("PUT", http.ws + "/codes/fresh/versions/1", {"properties": dict(body["properties"],
                                                                                   description="new")})
    assert again.status_code == 200 and again.json()["properties"]["description"] == "new"


@pytest.mark.parametrize("kind,example", [("components", "Workspace/ComponentVersion/createOrUpdate.json"),
                                          ("environments", "Workspace/EnvironmentVersion/createOrUpdate.json")])
def test_component_and_environment_versions_match_the_examples(http, kind, example):
    ex = _example(example)
    assert http("GET", http.ws + f"/{kind}/thing/versions/1").status_code == 404
    r = http("PUT", http.ws + f"/{kind}/thing/versions/1", ex["parameters"]["body"])
    # (the example's componentSpec is a placeholder with a different random key in request and response)
    assert r.status_code == 201 and missing(ex["responses"]["201"]["body"], r.json(), depth=1) == []
    assert http("GET", http.ws + f"/{kind}/thing/versions/1").json() == r.json()
    http.emu.advance(1)
    http("PUT", http.ws + f"/{kind}/thing/versions/2", ex["parameters"]["body"])
    latest = http("GET", http.ws + f"/{kind}/thing/versions?$orderBy=createdtime%20desc&$top=1").json()["value"]
    assert [v["name"] for v in latest] == ["2"]
    assert http("GET", http.ws + f"/{kind}/thing").json()["properties"]["latestVersion"] == "2"


def test_folder_data_uris_end_with_a_slash_files_do_not(http):
    folder = {"properties": {"dataType": "uri_folder", "dataUri": "azureml://datastores/workspaceblobstore/paths/d"}}
    file = {"properties": {"dataType": "uri_file", "dataUri": "azureml://datastores/workspaceblobstore/paths/f.csv"}}
    assert http("PUT", http.ws + "/data/d/versions/1", folder).json()["properties"]["dataUri"].endswith("/paths/d/")
    assert http("PUT", http.ws + "/data/f/versions/1", file).json()["properties"]["dataUri"].endswith("/f.csv")


def test_registry_lists_no_versions_of_an_unknown_model_with_200_as_recorded(http):
    rec = load("registry_discovery_and_registry_model__excerpt.json")["Entries"][1]
    d = http("GET", "https://eastus.api.azureml.ms/registrymanagement/v1.0/registries/azureml/discovery",
             api="v1.0").json()
    url = (f"{d['primaryRegionResourceProviderUri']}mferp/managementfrontend/subscriptions/{d['subscriptionId']}"
           f"/resourceGroups/{d['resourceGroup']}/providers/Microsoft.MachineLearningServices/registries/azureml"
           "/models/no-such-model/versions?$orderBy=createdtime%20desc&$top=1")
    r = http("GET", url, api="2021-10-01-dataplanepreview")
    assert r.status_code == rec["StatusCode"] == 200 and r.json() == rec["ResponseBody"] == {"value": []}


def test_a_pipeline_naming_a_workspace_component_version_that_does_not_exist_is_refused(http):
    comp = _example("Workspace/ComponentVersion/createOrUpdate.json")["parameters"]["body"]
    http("PUT", http.ws + "/components/train/versions/1", comp)
    node = {"componentId": http.ws.split("management.azure.com")[1] + "/components/train/versions/{v}"}

    def submit(name: str, version: str):
        body = {"properties": {"jobType": "Pipeline", "jobs": {"step": {"componentId": node["componentId"].format(
            v=version)}}}}
        return http("PUT", http.ws + f"/jobs/{name}", body, api="2025-01-01-preview")

    refused = submit("p-missing", "9")
    assert refused.status_code == 400 and "train:9" in refused.json()["error"]["message"]
    assert "p-missing" not in http.emu.state["jobs"]
    assert submit("p-ok", "1").status_code == 201


def test_pipeline_references_resolve_any_case_and_by_default_label_but_not_when_nothing_is_there(http):
    comp = _example("Workspace/ComponentVersion/createOrUpdate.json")["parameters"]["body"]
    http("PUT", http.ws + "/components/train/versions/31", comp)
    arm = http.ws.split("management.azure.com")[1]

    def submit(name: str, component_id: str):
        body = {"properties": {"jobType": "Pipeline", "jobs": {"step": {"componentId": component_id}}}}
        return http("PUT", http.ws + f"/jobs/{name}", body, api="2025-01-01-preview")

    assert submit("p-case", arm + "/components/Train/versions/31").status_code == 201
    assert submit("p-label", arm + "/components/train/labels/default").status_code == 201
    refused = submit("p-no-label", arm + "/components/nothing/labels/default")
    assert refused.status_code == 400 and "nothing@default" in refused.json()["error"]["message"]


def test_a_node_compute_bound_to_a_pipeline_input_is_checked_as_that_inputs_value(http):
    def submit(name: str, target: str):
        body = {"properties": {"jobType": "Pipeline",
                               "inputs": {"target": {"jobInputType": "literal", "value": target}},
                               "jobs": {"step": {"computeId": "${{parent.inputs.target}}"}}}}
        return http("PUT", http.ws + f"/jobs/{name}", body, api="2025-01-01-preview")

    refused = submit("p-bad-compute", "no-such-cluster")
    assert refused.status_code == 400 and "no-such-cluster" in refused.json()["error"]["message"]
    assert submit("p-serverless", "serverless").status_code == 201


def test_a_pipeline_gets_default_modes_no_output_uri_and_registers_named_outputs_when_it_completes(http, frozen_emu):
    body = {"properties": {"jobType": "Pipeline",
                           "inputs": {"data": {"jobInputType": "uri_file", "uri": "https://example.com/a.csv"}},
                           "outputs": {"model": {"jobOutputType": "uri_folder", "assetName": "best",
                                                 "assetVersion": "3"},
                                       "unnamed": {"jobOutputType": "uri_folder", "mode": "Upload"}},
                           "jobs": {"step": {"outputs": {
                               "bound": {"type": "literal", "value": "${{parent.outputs.model}}", "name": "not_me"},
                               "own": {"job_output_type": "uri_folder", "name": "step_out", "version": "1"}}}}}}
    props = http("PUT", http.ws + "/jobs/p-outputs", body, api="2025-01-01-preview").json()["properties"]
    assert props["inputs"]["data"]["mode"] == "ReadOnlyMount"
    assert props["outputs"]["model"]["mode"] == "ReadWriteMount" and "uri" not in props["outputs"]["model"]
    assert props["outputs"]["unnamed"] == {"jobOutputType": "uri_folder", "mode": "Upload"}
    assert http("GET", http.ws + "/data/best/versions/3").status_code == 404  # not before the job completes
    frozen_emu.advance(10_000)
    assert http("GET", http.ws + "/jobs/p-outputs").json()["properties"]["status"] == "Completed"
    assert http("GET", http.ws + "/data/best/versions/3").json()["properties"]["dataType"] == "uri_folder"
    assert http("GET", http.ws + "/data/step_out/versions/1").status_code == 200
    assert http("GET", http.ws + "/data/not_me").status_code == 404


def test_compute_echoes_the_admin_user_never_the_password_as_recorded(http):
    rec = load("compute__test_aml_compute_create_and_delete.json")["Entries"]
    body = rec[0]["RequestBody"]
    body["properties"]["properties"]["vmSize"] = "Standard_DS3_v2"
    sent = body["properties"]["properties"]["userAccountCredentials"]
    assert sent["adminUserPassword"]
    http("PUT", http.ws + "/computes/cpu2", body)
    got = http("GET", http.ws + "/computes/cpu2").json()["properties"]["properties"]["userAccountCredentials"]
    recorded = next(e for e in rec if e["RequestMethod"] == "GET" and "/computes/" in e["RequestUri"]
                    and "userAccountCredentials" in json.dumps(e["ResponseBody"]))
    expected = recorded["ResponseBody"]["properties"]["properties"]["userAccountCredentials"]
    assert set(got) == set(expected) and got["adminUserPassword"] is expected["adminUserPassword"] is None
    assert got["adminUserName"] == sent["adminUserName"] and sent["adminUserPassword"] not in json.dumps(got)


def test_compute_instance_stop_and_start_match_the_example_and_settle_when_the_operation_ends(http, frozen_emu):
    http("PUT", http.ws + "/computes/ci1", {"properties": {"computeType": "ComputeInstance",
                                                           "properties": {"vmSize": "Standard_DS3_v2"}}})
    frozen_emu.advance(frozen_emu.durations.compute_create)
    state = lambda: http("GET", http.ws + "/computes/ci1").json()["properties"]["properties"]["state"]  # noqa: E731
    assert state() == "Running"
    example = _example("Compute/stop.json")["responses"]
    r = http("POST", http.ws + "/computes/ci1/stop")
    assert str(r.status_code) in example and "/computeOperationsStatus/" in r.headers["Azure-AsyncOperation"]
    assert state() == "Stopping"
    assert http("GET", r.headers["Azure-AsyncOperation"]).json()["status"] == "InProgress"
    frozen_emu.advance(120)
    assert http("GET", r.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    assert state() == "Stopped"
    http("POST", http.ws + "/computes/ci1/start")
    frozen_emu.advance(120)
    assert state() == "Running"
    http("PUT", http.ws + "/computes/cluster1", {"properties": {"computeType": "AmlCompute",
                                                                "properties": {"vmSize": "Standard_DS3_v2"}}})
    assert http("POST", http.ws + "/computes/cluster1/stop").status_code == 400  # clusters have no power actions
    assert http("POST", http.ws + "/computes/nope/stop").status_code == 404


def _recorded_components() -> list[dict[str, Any]]:
    return load("component__test_component__excerpt.json")["Entries"]


def _in_emulator(http, value: Any) -> Any:
    """A recorded body with the recording's workspace replaced by the emulator's."""
    recorded_ws = ("/subscriptions/00000000-0000-0000-0000-000000000/resourceGroups/00000/providers/"
                   "Microsoft.MachineLearningServices/workspaces/00000")
    return json.loads(json.dumps(value).replace(recorded_ws, http.ws.split("management.azure.com")[1]))


@pytest.mark.parametrize("entry", [e for e in _recorded_components() if e["StatusCode"] == 201],
                         ids=lambda e: e["_from"].split("test_component.pyTestComponent")[1].split(".json")[0])
def test_a_component_spec_comes_back_as_recorded(http, entry):
    """Scalars as strings, optional inputs said, curated environments in the azureml registry, the service's
    distribution casing, a pipeline component not deterministic (its nodes aside: kept, see component_spec)."""
    body = _in_emulator(http, entry["RequestBody"])
    code = body["properties"]["componentSpec"].get("code")
    if code:  # the code asset the recorded component names
        http("PUT", "https://management.azure.com" + code.removeprefix("azureml:"),
             {"properties": {"codeUri": "https://account.blob.core.windows.net/c/folder"}})
    url = http.ws + "/components/" + entry["RequestUri"].split("/components/")[1].split("?")[0]
    r = http("PUT", url, body, api="2024-01-01-preview")
    expected = _in_emulator(http, entry["ResponseBody"])
    assert r.status_code == 201 and missing(expected, r.json(), depth=1) == []
    spec = r.json()["properties"]["componentSpec"]
    spec.pop("jobs", None)
    assert spec == expected["properties"]["componentSpec"]
    assert r.json()["properties"]["stage"] == expected["properties"]["stage"]


def test_a_component_version_re_sent_with_other_code_is_refused_as_recorded(http):
    first, second = (_in_emulator(http, e) for e in _recorded_components() if "update_code" in e["_from"])
    for entry in (first, second):
        code = entry["RequestBody"]["properties"]["componentSpec"]["code"].removeprefix("azureml:")
        http("PUT", "https://management.azure.com" + code, {"properties": {"codeUri": "https://a.blob/c/" + code}})
    url = http.ws + "/components/test_571303673444/versions/1"
    assert http("PUT", url, first["RequestBody"], api="2024-01-01-preview").status_code == 201
    refused = http("PUT", url, second["RequestBody"], api="2024-01-01-preview")
    assert refused.status_code == second["StatusCode"] == 400
    assert refused.json()["error"]["message"] == second["ResponseBody"]["error"]["message"]
    # what may change (the description, the display name) still can
    described = copy.deepcopy(first["RequestBody"])
    described["properties"]["componentSpec"]["display_name"] = "Renamed"
    again = http("PUT", url, described, api="2024-01-01-preview")
    assert again.status_code == 200 and again.json()["properties"]["componentSpec"]["display_name"] == "Renamed"


def test_a_component_container_offers_a_timestamp_as_its_next_version(http):
    """Recorded (test_command_component_create_autoincrement): ``"nextVersion": "2026-03-27-04-05-20-2300110"``,
    which the SDK takes for a component created again without a version."""
    import re
    from datetime import UTC, datetime

    spec = {"type": "command", "command": "echo hi", "environment": "azureml:AzureML-Minimal:2"}
    http("PUT", http.ws + "/components/auto/versions/1", {"properties": {"componentSpec": spec}})
    offered = http("GET", http.ws + "/components/auto").json()["properties"]["nextVersion"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{7}", offered)
    assert offered.startswith(datetime.fromtimestamp(http.emu.clock.now(), UTC).strftime("%Y-%m-%d-%H-%M-%S"))


def test_a_pipeline_component_made_from_a_job_takes_the_jobs_interface(http):
    """Recorded (test_create_pipeline_component_from_job): the sent spec names only ``sourceJobId``; the service
    answers with the job's inputs (a path as ``path``, a literal typed by its value, its default) and outputs."""
    comp = _example("Workspace/ComponentVersion/createOrUpdate.json")["parameters"]["body"]
    http("PUT", http.ws + "/components/train/versions/1", comp)
    step = {"componentId": http.ws.split("management.azure.com")[1] + "/components/train/versions/1"}
    job = {"properties": {"jobType": "Pipeline", "jobs": {"step": step},
                          "inputs": {"data": {"jobInputType": "uri_folder", "uri": "https://a.blob/c/d/"},
                                     "rate": {"jobInputType": "literal", "value": "0.1"}},
                          "outputs": {"best": {"jobOutputType": "uri_folder"}}}}
    assert http("PUT", http.ws + "/jobs/source-job", job, api="2025-01-01-preview").status_code == 201

    def from_job(name: str):
        spec = {"type": "pipeline", "jobs": {}, "name": "from_job",
                "sourceJobId": http.ws.split("management.azure.com")[1] + f"/jobs/{name}"}
        return http("PUT", http.ws + "/components/from_job/versions/1", {"properties": {"componentSpec": spec}},
                    api="2024-01-01-preview")

    assert from_job("no-such-job").status_code == 400
    spec = from_job("source-job").json()["properties"]["componentSpec"]
    assert spec["inputs"] == {"data": {"type": "path", "optional": "False"},
                              "rate": {"type": "number", "optional": "False", "default": "0.1"}}
    assert spec["outputs"] == {"best": {"type": "uri_folder"}}
    assert spec["is_deterministic"] == "False" and "sourceJobId" not in spec and "jobs" not in spec
