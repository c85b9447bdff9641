"""`finetune plan/apply/destroy/status/invoke` on the Azure ML target, through the real SDK and the emulator."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from finetune.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def apply(capsys, spec: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "apply", str(spec), "--auto-approve", *extra)


def edit(spec: Path, old: str, new: str) -> None:
    text = spec.read_text()
    assert old in text, old
    spec.write_text(text.replace(old, new, 1))


def jobs(emu) -> dict:
    return emu.state["jobs"]


def test_fresh_apply_creates_the_notebooks_entities(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, out, err = apply(capsys, spec)
    assert code == 0, err
    state = emu.state
    assert list(state["computes"]) == ["gpu-cluster-big"]
    assert state["computes"]["gpu-cluster-big"]["properties"]["properties"]["vmSize"].lower() == \
        "standard_nc24ads_a100_v4"
    assert sorted(state["data"]) == ["phi3-ultrachat-test", "phi3-ultrachat-train"]
    assert len(jobs(emu)) == 1
    job = next(iter(jobs(emu).values()))
    assert emu.job_status(job["name"]) == "Completed"
    assert job["properties"]["tags"]["finetune.spec"] == "phi3-ultrachat"
    assert job["properties"]["experimentName"] == "chat_completion_Phi-3-mini-4k-instruct"
    model = state["models"]["Phi-3-mini-4k-instruct-ultrachat-200k"]["versions"]
    assert list(model) == ["1"]
    [endpoint_name] = list(state["endpoints"])
    assert endpoint_name.startswith("ultrachat-completion-")
    endpoint = state["endpoints"][endpoint_name]
    assert endpoint["body"]["properties"]["traffic"] == {"demo": 100}
    assert list(endpoint["deployments"]) == ["demo"]
    assert "Smoke test:" in out and "answer:   [demo] emulated reply to: " in out
    # the job's submitted parameters: spec values win over model defaults; dropped keys are not sent
    inputs = json.dumps(job["properties"]["jobs"] if "jobs" in job["properties"] else job["properties"])
    assert "learning_rate_min" not in inputs


def test_reapply_of_unchanged_spec_issues_zero_writes(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    emu.reset_log()
    code, out, _ = apply(capsys, spec)
    assert code == 0
    assert emu.write_count() == 0, [(r.method, r.path) for r in emu.writes()]
    assert "Nothing to do" in out
    assert len(jobs(emu)) == 1


def test_learning_rate_change_trains_again_and_rolls_the_deployment(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    edit(spec, "learning_rate: 5e-6", "learning_rate: 1e-5")
    code, out, _ = run(capsys, "plan", str(spec), "--json")
    plan = {c["address"]: c for c in json.loads(out)["changes"]}
    assert plan["job.finetune"]["action"] == "create"
    assert "training will run again: learning_rate 5e-06 -> 1e-05" in plan["job.finetune"]["reasons"][0]
    assert plan["deployment.ultrachat-completion/demo"]["action"] == "update"
    assert plan["compute.gpu-cluster-big"]["action"] == "noop"
    assert apply(capsys, spec)[0] == 0
    assert len(jobs(emu)) == 2
    versions = emu.state["models"]["Phi-3-mini-4k-instruct-ultrachat-200k"]["versions"]
    assert sorted(versions) == ["1", "2"]
    endpoint = next(iter(emu.state["endpoints"].values()))
    assert endpoint["deployments"]["demo"]["properties"]["model"].endswith("/versions/2")
    assert endpoint["body"]["properties"]["traffic"] == {"demo": 100}


def test_instance_count_change_only_updates_the_deployment(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    edit(spec, "instance_count: 1", "instance_count: 2")
    emu.reset_log()
    assert apply(capsys, spec)[0] == 0
    written = [r.operation for r in emu.writes()]
    # the deployment is updated, then smoke-tested again (the pass is recorded as a tag on the endpoint)
    assert sorted(written) == ["onlineDeployments.create", "onlineEndpoints.create"], written
    assert len(jobs(emu)) == 1


def test_429_and_503_storms_are_survived(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    emu.faults.add("*", "throttle", times=6, retry_after=0)
    emu.faults.add("*", "unavailable", times=6, retry_after=0)
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    assert len(jobs(emu)) == 1
    statuses = [r.status for r in emu.requests]
    assert statuses.count(429) >= 6 and statuses.count(503) >= 6


def test_failed_job_skips_dependents_and_orphans_nothing(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    emu.faults.add("jobs.create", "job_failed", message="CUDA out of memory", logs="RuntimeError: CUDA OOM")
    code, _, err = apply(capsys, spec)
    assert code == 1
    assert "error: job.finetune: fine-tuning job" in err and "ended Failed: CUDA out of memory" in err
    assert "skipped" in err and "model.Phi-3-mini-4k-instruct-ultrachat-200k" in err
    assert "Traceback" not in err
    # independent work finished and carries our tags, so the next apply adopts it instead of duplicating it
    [endpoint] = emu.state["endpoints"].values()
    assert endpoint["body"]["tags"]["finetune.spec"] == "phi3-ultrachat"
    assert endpoint["deployments"] == {}
    code, out, _ = run(capsys, "plan", str(spec), "--json")
    plan = {c["address"]: c for c in json.loads(out)["changes"]}
    assert plan["endpoint.ultrachat-completion"]["action"] == "noop"  # kept from the failed apply, not recreated
    assert plan["job.finetune"]["action"] == "create"
    assert "ended Failed" in plan["job.finetune"]["reasons"][0]
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    assert len(jobs(emu)) == 2  # the failed run is not reused; a new one trains


def test_concurrent_applies_start_one_job(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    results: list[int] = []

    def one() -> None:
        try:
            main(["apply", str(spec), "--auto-approve", "--json"])
        except SystemExit as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    capsys.readouterr()
    assert sorted(results) in ([0, 0], [0, 1])  # the second one either waits its turn or is refused by the lock
    assert len(jobs(emu)) == 1


def test_destroy_removes_what_it_should_and_nothing_else(emu, workdir, capsys):
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    other = emu.ml_client().online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="someone-elses", auth_mode="key")).result()
    code, _, err = run(capsys, "destroy", str(spec), "--auto-approve")
    assert code == 0, err
    assert list(emu.state["endpoints"]) == [other.name]
    assert "gpu-cluster-big" in emu.state["computes"]  # kept without --all
    code, _, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve")
    assert code == 0, err
    assert emu.state["computes"] == {}
    assert list(emu.state["endpoints"]) == [other.name]
    versions = emu.state["models"]["Phi-3-mini-4k-instruct-ultrachat-200k"]["versions"]
    assert all(v["properties"]["isArchived"] for v in versions.values())


def test_destroy_refuses_prevent_destroy(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    edit(spec, "  auth_mode: key\n", "  auth_mode: key\n  prevent_destroy: true\n")
    assert apply(capsys, spec)[0] == 0
    code, _, err = run(capsys, "destroy", str(spec), "--auto-approve")
    assert code == 1 and "prevent_destroy" in err
    assert len(emu.state["endpoints"]) == 1


def test_preflight_blocks_on_quota_and_name_conflict(emu, workdir, capsys):
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    spec = workdir / "spec.yaml"
    emu.set_quota("StandardNCADSA100v4Family", 8)
    code, out, _ = run(capsys, "plan", str(spec))
    assert code == 3
    assert "needs 24 vCPUs" in out or "needs 48 vCPUs" in out
    assert "request more quota" in out
    emu.set_quota("StandardNCADSA100v4Family", 1000)
    edit(spec, "  unique_suffix: true", "  unique_suffix: false")
    emu.ml_client().online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="ultrachat-completion", auth_mode="key")).result()
    code, out, _ = run(capsys, "plan", str(spec))
    assert code == 3
    assert "is taken by an endpoint this spec does not manage" in out
    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 3 and emu.write_count() == 0


def test_model_without_allow_list_tags_warns(emu, workdir, capsys, monkeypatch):
    from finetune.backends.azureml.modelinfo import model_info

    # the newer system_metadata layout may publish no allow-list tags at all
    info = model_info("15", "id", {"model_specific_defaults": "{}"}, {})
    assert info.finetune_skus is None and info.inference_skus is None


def test_saved_plan_applies_and_stale_one_is_refused(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    plan_file = workdir / "plan.json"
    assert run(capsys, "plan", str(spec), "--out", str(plan_file))[0] == 0
    code, _, err = run(capsys, "apply", str(plan_file))
    assert code == 0, err
    assert len(jobs(emu)) == 1
    code, _, err = run(capsys, "apply", str(plan_file))
    assert code == 1 and "stale" in err


def test_status_and_invoke(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    code, out, _ = run(capsys, "status", str(spec), "--json")
    assert code == 0
    report = json.loads(out)
    assert all(r["exists"] for r in report["resources"])
    job = next(r for r in report["resources"] if r["address"] == "job.finetune")
    assert job["status"] == "Completed" and "train_loss" in report["metrics"]["final"]  # read through MLflow
    assert report["burn"]["usd_per_hour"] == pytest.approx(3.673)
    code, out, _ = run(capsys, "invoke", str(spec), "-m", "hello from the test")
    assert code == 0 and "hello from the test" in out


@pytest.mark.parametrize("raw, expected", [
    ('"plain"', "plain"), ("plain text", "plain text"), ('{"output": "a"}', "a"), ('[{"output": "b"}]', "b"),
    ('{"0": "c"}', "c"), ('[{"0": "d"}]', "d"),
])
def test_every_response_shape_is_understood(raw, expected):
    from finetune.invoke import parse_response

    assert parse_response(raw) == expected


def test_no_secret_reaches_output_journal_or_plan(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    plan_file = workdir / "plan.json"
    outputs = []
    for argv in (["plan", str(spec), "--out", str(plan_file)], ["apply", str(spec), "--auto-approve"],
                 ["status", str(spec), "--json"], ["invoke", str(spec)]):
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        outputs += [out, err]
    endpoint = next(iter(emu.state["endpoints"]))
    keys = emu.ml_client().online_endpoints.get_keys(endpoint)
    token = emu.credential.get_token("https://management.azure.com/.default").token
    secrets = [keys.primary_key, keys.secondary_key, token]
    files = [plan_file.read_text()] + [p.read_text() for p in (workdir / ".finetune").rglob("*.jsonl")]
    for secret in secrets:
        assert secret
        for text in outputs + files:
            assert secret not in text


def test_blue_green_rollout_tests_the_new_model_before_moving_traffic(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    edit(spec, "  auth_mode: key\n", "  auth_mode: key\n  rollout: blue_green\n")
    assert apply(capsys, spec)[0] == 0
    [endpoint] = emu.state["endpoints"].values()
    assert list(endpoint["deployments"]) == ["demo-v1"]
    assert endpoint["body"]["properties"]["traffic"] == {"demo-v1": 100}

    edit(spec, "learning_rate: 5e-6", "learning_rate: 1e-5")
    code, out, _ = run(capsys, "plan", str(spec), "--json")
    changes = {c["address"]: c for c in json.loads(out)["changes"]}
    assert changes["deployment.ultrachat-completion/demo"]["action"] == "create"
    assert changes["retire.ultrachat-completion/demo-v1"]["action"] == "delete"
    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    order = [(r.operation, r.path.rsplit("/", 1)[-1]) for r in emu.writes() if "onlineEndpoints" in r.operation
             or "onlineDeployments" in r.operation]
    created = order.index(("onlineDeployments.create", "demo-v2"))
    scored = next(i for i, r in enumerate(emu.requests) if r.operation == "scoring.score")
    routed = next(i for i, r in enumerate(emu.requests) if r.is_write and r.operation == "onlineEndpoints.create"
                  and (r.body or {}).get("properties", {}).get("traffic") == {"demo-v2": 100})
    deleted = next(i for i, r in enumerate(emu.requests) if r.operation == "onlineDeployments.delete")
    first_create = next(i for i, r in enumerate(emu.requests) if r.operation == "onlineDeployments.create")
    assert created >= 0 and first_create < scored < routed < deleted
    [endpoint] = emu.state["endpoints"].values()
    assert list(endpoint["deployments"]) == ["demo-v2"]
    assert endpoint["body"]["properties"]["traffic"] == {"demo-v2": 100}


def test_deployment_removed_from_the_spec_is_deleted(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    edit(spec, "    - name: demo\n", "    - name: green\n      sku: Standard_NC24ads_A100_v4\n    - name: demo\n")
    edit(spec, "    demo: 100", "    demo: 100\n    green: 0")
    assert apply(capsys, spec)[0] == 0
    [endpoint] = emu.state["endpoints"].values()
    assert sorted(endpoint["deployments"]) == ["demo", "green"]
    edit(spec, "    - name: green\n      sku: Standard_NC24ads_A100_v4\n", "")
    edit(spec, "    green: 0", "")
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    [endpoint] = emu.state["endpoints"].values()
    assert list(endpoint["deployments"]) == ["demo"]


@pytest.mark.parametrize("target, kind, expected", [
    ("onlineDeployments.create", "liveness_failed", "last log lines:"),
    ("onlineEndpoints.create", "name_taken", "endpoint.unique_suffix: true"),
    ("computes.create", "quota", "request a quota increase"),
])
def test_failures_are_diagnosed_with_a_fix(emu, workdir, capsys, target, kind, expected):
    spec = workdir / "spec.yaml"
    emu.faults.add(target, kind)
    code, _, err = apply(capsys, spec)
    assert code == 1
    assert expected in err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1  # one diagnosis; dependents are listed as skipped, not as errors


def test_status_text_shows_burn_and_job(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    code, out, _ = run(capsys, "status", str(spec))
    assert code == 0
    assert "* job.finetune [Completed]" in out
    assert re.search(r"logged: .*train_loss \d", out)  # the final metrics the fine-tune step logged to MLflow
    assert "Running cost: $3.67/hour = $88.15/day" in out
