"""Rows of the transition table (docs/lifecycle.md) end to end: the CLI, the real SDK, the emulator.

Each test changes the spec or the target, checks what plan says and what apply writes, then that the next apply
writes nothing. (Job retries, endpoint replacement, races and destroy have tests of their own.)
"""

from __future__ import annotations

import json

from test_apply import apply, edit, run


def converge(capsys, spec) -> None:
    code, _, err = apply(capsys, spec)
    assert code == 0, err


def planned(capsys, spec) -> dict[str, str]:
    code, out, err = run(capsys, "plan", str(spec), "--json")
    assert code == 0, err
    return {c["address"]: c["action"] for c in json.loads(out)["changes"]}


def assert_converged(emu, capsys, spec) -> None:
    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    assert emu.writes() == [], [w.operation for w in emu.writes()]


def test_compute_changed_in_place_is_updated(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    converge(capsys, spec)
    edit(spec, "max_instances: 2", "max_instances: 3")
    assert planned(capsys, spec)["compute.gpu-cluster-big"] == "update"
    emu.reset_log()
    converge(capsys, spec)
    assert {w.operation for w in emu.writes()} == {"computes.create"}
    assert emu.state["computes"]["gpu-cluster-big"]["properties"]["properties"]["scaleSettings"][
        "maxNodeCount"] == 3
    assert_converged(emu, capsys, spec)


def test_compute_tier_change_replaces_it_without_training_again(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    converge(capsys, spec)
    edit(spec, "tier: dedicated", "tier: low_priority")
    plan = planned(capsys, spec)
    assert plan["compute.gpu-cluster-big"] == "replace" and plan["job.finetune"] == "noop"
    emu.reset_log()
    converge(capsys, spec)
    written = [w.operation for w in emu.writes()]
    assert "computes.delete" in written and "computes.create" in written
    assert not any(op.startswith("jobs.") for op in written), written
    assert len(emu.state["jobs"]) == 1
    assert_converged(emu, capsys, spec)


def test_a_size_with_more_gpus_trains_again_and_says_why(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    converge(capsys, spec)
    edit(spec, "sku: Standard_NC24ads_A100_v4   # 1 x A100", "sku: Standard_NC48ads_A100_v4   # 2 x A100")
    code, out, err = run(capsys, "plan", str(spec), "--json")
    job = next(c for c in json.loads(out)["changes"] if c["address"] == "job.finetune")
    assert job["action"] == "create" and "number_of_gpu_to_use_finetuning 1 -> 2" in job["reasons"][0]


def test_endpoint_description_is_updated_in_place_keeping_traffic(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    converge(capsys, spec)
    edit(spec, "auth_mode: key", "auth_mode: key\n  description: chat completions for the support team")
    plan = planned(capsys, spec)
    assert plan["endpoint.ultrachat-completion"] == "update"
    assert plan["deployment.ultrachat-completion/demo"] == "noop"
    converge(capsys, spec)
    [endpoint] = emu.state["endpoints"].values()
    assert endpoint["body"]["properties"]["description"] == "chat completions for the support team"
    assert endpoint["body"]["properties"]["traffic"] == {"demo": 100}
    assert_converged(emu, capsys, spec)


def test_a_deployment_left_failed_is_replaced_by_the_next_apply(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    emu.faults.add("onlineDeployments.create", "liveness_failed", message="container crashed")
    code, _, err = apply(capsys, spec)
    assert code == 1 and "Traceback" not in err
    assert planned(capsys, spec)["deployment.ultrachat-completion/demo"] == "replace"
    emu.reset_log()
    converge(capsys, spec)
    written = [w.operation for w in emu.writes()]
    assert "onlineDeployments.delete" in written and "onlineDeployments.create" in written
    assert len(emu.state["jobs"]) == 1
    assert_converged(emu, capsys, spec)


def test_a_compute_not_created_by_finetune_is_used_and_never_touched(emu, workdir, capsys):
    from azure.ai.ml.entities import AmlCompute

    spec = workdir / "spec.yaml"
    client = emu.ml_client()
    client.compute.begin_create_or_update(AmlCompute(name="gpu-cluster-big", size="Standard_NC24ads_A100_v4",
                                                     min_instances=0, max_instances=1)).result()
    assert planned(capsys, spec)["compute.gpu-cluster-big"] == "noop"
    emu.reset_log()
    converge(capsys, spec)
    assert not any(w.operation.startswith("computes.") for w in emu.writes())
    code, _, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve")
    assert code == 0, err
    assert "gpu-cluster-big" in emu.state["computes"]


def _endpoint_name(emu) -> str:
    [name] = list(emu.state["endpoints"])
    return name


def test_instance_count_changed_in_the_portal_is_reported_as_drift_and_set_back(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    converge(capsys, spec)
    client = emu.ml_client()
    deployment = client.online_deployments.get("demo", endpoint_name=_endpoint_name(emu))
    deployment.instance_count = 3  # as someone would in the portal: read, change, write (tags kept)
    client.online_deployments.begin_create_or_update(deployment).result()
    code, out, _ = run(capsys, "plan", str(spec), "--detailed-exitcode")
    assert code == 2
    assert "instance_count: 3 -> 1 (changed outside finetune: apply sets it back)" in out
    converge(capsys, spec)
    assert client.online_deployments.get("demo", endpoint_name=_endpoint_name(emu)).instance_count == 1
    assert_converged(emu, capsys, spec)


def test_traffic_moved_outside_finetune_is_routed_back(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    converge(capsys, spec)
    client = emu.ml_client()
    endpoint = client.online_endpoints.get(_endpoint_name(emu))
    endpoint.traffic = {"demo": 0}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    code, out, _ = run(capsys, "plan", str(spec))
    assert "traffic: {} -> {'demo': 100} (changed outside finetune" in out
    converge(capsys, spec)
    assert client.online_endpoints.get(_endpoint_name(emu)).traffic == {"demo": 100}
    assert_converged(emu, capsys, spec)
