"""Convergence regressions, end to end: the CLI in process, the real SDK, the emulator's state and request log.

Each test drives a user's sequence of commands and asserts what the workspace ends up holding and how many writes
each command issued (counted from the emulator's request log, never from finetune's own account of itself).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from test_apply import apply, edit, run

from finetune.backends.azureml.client import ClientOptions, RetrySettings, default_options

FINGERPRINT = "finetune.fingerprint"
MODEL = "Phi-3-mini-4k-instruct-ultrachat-200k"
ENDPOINT = "endpoint.ultrachat-completion"
DEPLOYMENT = "deployment.ultrachat-completion/demo"
TRAFFIC = "traffic.ultrachat-completion"
SMOKE = "smoke_test.ultrachat-completion"
# Storage requests go through the storage SDK's own client (no retry policy from the factory) and the in-process
# credential never calls the token routes: they are not stormed (as in test_faults).
NOT_STORMED = ("blob.", "aad.")


def writes(emu) -> list[tuple[str, str, str]]:
    return [(w.method, w.operation, w.path) for w in emu.writes()]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.lstrip().startswith("error:")]


def plan_changes(capsys, spec) -> dict[str, dict]:
    code, out, err = run(capsys, "plan", str(spec), "--json")
    assert code in (0, 2), f"plan --json exited {code}: {err[-2000:]}"
    return {c["address"]: c for c in json.loads(out)["changes"]}


def jobs_of(emu, fingerprint: str) -> dict[str, str]:
    """name -> status of every job in the workspace tagged with this fingerprint."""
    return {j["name"]: emu.job_status(j["name"]) for j in emu.state["jobs"].values()
            if (j["properties"].get("tags") or {}).get(FINGERPRINT) == fingerprint}


def our_endpoints(emu) -> dict[str, dict]:
    return {name: e for name, e in emu.state["endpoints"].items()
            if (e["body"].get("tags") or {}).get("finetune.spec") == "phi3-ultrachat"}


def assert_zero_write_reapply(emu, capsys, spec, why: str) -> str:
    emu.reset_log()
    code, out, err = apply(capsys, spec)
    assert code == 0, f"{why}: the re-apply exited {code}: {err[-2000:]}"
    assert writes(emu) == [], f"{why}: the re-apply of an unchanged spec wrote {writes(emu)}"
    return out


# ---- 1. a failed job is retried once, under a deterministic name, then adopted ---------------------------------
def test_a_failed_job_is_retried_once_deterministically_then_adopted(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    emu.faults.add("jobs.create", "job_failed", times=1, message="CUDA out of memory")

    code, _, err = apply(capsys, spec)
    assert code == 1, f"an apply whose training job failed must exit 1, got {code}: {err[-2000:]}"
    [failed] = [j["name"] for j in emu.state["jobs"].values()]
    assert emu.job_status(failed) == "Failed"
    fingerprint = emu.state["jobs"][failed.lower()]["properties"]["tags"][FINGERPRINT]
    errors = [line for line in error_lines(err) if "skipped" not in line]
    assert len(errors) == 1, f"expected one error line for the failed job, got {errors}"
    assert failed in errors[0] and "CUDA out of memory" in errors[0], \
        f"the error line must name the failed job {failed} and its cause: {errors[0]!r}"
    assert "Traceback" not in err

    # plan says why training runs again: a retry after the failed attempt, under a name known now
    job = plan_changes(capsys, spec)["job.finetune"]
    assert job["action"] == "create", f"after a failed attempt plan must retrain, planned {job['action']}"
    reason = " ".join(job["reasons"])
    assert "retry" in reason.lower() and failed in reason and "Failed" in reason, \
        f"plan must say training runs again as a retry after {failed} failed, said {job['reasons']}"
    planned_name = job["after"]["name"]
    assert planned_name == f"{failed}-a2", \
        f"plan must name the retry {failed}-a2 (attempt 2 of the same fingerprint), named it {planned_name}"
    assert "attempt 2" in reason and planned_name in reason, \
        f"plan must say the retry runs as attempt 2 ({planned_name}), said {job['reasons']}"

    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0, f"the retry apply exited {code}: {err[-2000:]}"
    submitted = [path.rsplit("/", 1)[-1] for _, op, path in writes(emu) if op == "jobs.create"]
    assert submitted == [planned_name], f"the apply after the failure must submit exactly one retry: {submitted}"
    attempts = jobs_of(emu, fingerprint)
    retry = next((n for n in attempts if n != failed), None)
    assert retry is not None, f"no retry tagged with fingerprint {fingerprint[:12]}: {sorted(emu.state['jobs'])}"
    assert retry == planned_name, f"apply submitted {retry}, plan had named the retry {planned_name}"
    assert retry.startswith(failed) and re.search(r"\D2$", retry), \
        f"the retry's name must be the first attempt's plus an attempt number (2), got {retry}"
    assert not re.search(r"\d{8,}", retry), f"the retry's name must carry no timestamp, got {retry}"
    assert attempts == {failed: "Failed", retry: "Completed"}, attempts
    tags = {n: emu.state["jobs"][n.lower()]["properties"]["tags"] for n in (failed, retry)}
    assert tags[retry][FINGERPRINT] == fingerprint and tags[retry].get("finetune.attempt") == "2", \
        f"the retry must carry the same fingerprint and finetune.attempt 2: {tags[retry]}"
    assert tags[failed].get("finetune.attempt") == "1", f"the first attempt must be tagged attempt 1: {tags[failed]}"
    versions = emu.state["models"][MODEL]["versions"]
    assert [v["properties"]["tags"].get("finetune.job") for v in versions.values()] == [retry], \
        f"exactly one model version, registered from the retry: {versions}"

    out = assert_zero_write_reapply(emu, capsys, spec, "apply #3 after the retry completed")
    assert "Nothing to do" in out
    # identity comes from tags: a checkout that lost its state folder adopts the retry as well
    shutil.rmtree(workdir / ".finetune")
    out = assert_zero_write_reapply(emu, capsys, spec, "apply #4 without the state folder")
    assert "Nothing to do" in out
    assert jobs_of(emu, fingerprint) == {failed: "Failed", retry: "Completed"}, \
        f"after 4 applies this fingerprint must have exactly 2 jobs: {jobs_of(emu, fingerprint)}"
    assert len(emu.state["jobs"]) == 2


# ---- 2. replacing the endpoint re-creates what lives inside it --------------------------------------------------
def test_auth_mode_change_replaces_the_endpoint_and_everything_inside_it(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    [old_name] = our_endpoints(emu)
    jobs_before = len(emu.state["jobs"])

    edit(spec, "auth_mode: key", "auth_mode: aml_token")
    plan = plan_changes(capsys, spec)
    actions = {a: plan[a]["action"] if a in plan else None for a in (ENDPOINT, DEPLOYMENT, TRAFFIC, SMOKE)}
    assert actions[ENDPOINT] == "replace", f"auth_mode cannot change in place: {actions}"
    expected = {ENDPOINT: "replace", DEPLOYMENT: "replace", TRAFFIC: "update", SMOKE: "create"}
    assert actions == expected, \
        f"what lives inside the replaced endpoint is lost with it and must be planned again: {actions}"
    assert plan["job.finetune"]["action"] == "noop", "re-creating the endpoint must not retrain"

    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0, f"the replacing apply exited {code}: {err[-2000:]}"
    ops = [op for _, op, _ in writes(emu)]
    assert "onlineEndpoints.delete" in ops, f"the endpoint was not re-created: {ops}"
    assert not any(op.startswith("jobs.") for op in ops), ops
    assert len(emu.state["jobs"]) == jobs_before
    endpoints = our_endpoints(emu)
    assert list(endpoints) == [old_name], f"expected the endpoint {old_name} re-created, found {list(endpoints)}"
    endpoint = endpoints[old_name]
    assert endpoint["body"]["properties"]["authMode"] == "AMLToken", endpoint["body"]["properties"]["authMode"]
    assert list(endpoint["deployments"]) == ["demo"], \
        f"the re-created endpoint must hold its deployment again, holds {list(endpoint['deployments'])}"
    assert endpoint["body"]["properties"]["traffic"] == {"demo": 100}, endpoint["body"]["properties"]["traffic"]
    # the endpoint was created afresh (its old tags went with it): a smoke-test tag on it was written by this apply
    assert "finetune.smoke_test" in endpoint["body"]["tags"], "the smoke test on the new endpoint was not recorded"
    assert any(r.operation == "scoring.score" and r.status == 200 for r in emu.requests), \
        "the re-created endpoint was never smoke-tested"

    assert_zero_write_reapply(emu, capsys, spec, "after replacing the endpoint")
    plan = plan_changes(capsys, spec)
    assert {a: c["action"] for a, c in plan.items() if c["action"] != "noop"} == {}, "not converged"


# ---- 4. destroy twice ---------------------------------------------------------------------------------------------
def test_destroy_twice_second_is_a_zero_write_noop(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err

    code, out, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve", "--json")
    assert code == 0, f"the first destroy exited {code}: {err[-2000:]}"
    try:
        first = json.loads(out)
    except ValueError as exc:
        raise AssertionError(f"destroy --json stdout is not exactly one JSON document ({exc}): {out[:2000]!r}") \
            from None
    assert first.get("ok") is True, first
    assert our_endpoints(emu) == {} and emu.state["computes"] == {}
    assert all(v["properties"]["isArchived"] for v in emu.state["models"][MODEL]["versions"].values())

    emu.reset_log()
    code, out, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve", "--json")
    assert code == 0, f"the second destroy exited {code}: {err[-2000:]}"
    try:
        second = json.loads(out)
    except ValueError as exc:
        raise AssertionError(f"the second destroy --json stdout is not exactly one JSON document ({exc}): "
                             f"{out[:2000]!r}") from None
    assert writes(emu) == [], f"the second destroy must write nothing (no archive calls), wrote {writes(emu)}"
    assert second.get("ok") is True and not second.get("steps"), \
        f"the second destroy must report nothing destroyed: {second}"

    emu.reset_log()
    code, out, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve")
    assert code == 0, err
    assert "Nothing to destroy" in out, f"a destroy with nothing left must say so: {out!r}"
    assert writes(emu) == [], writes(emu)


def test_reapply_after_destroy_all_restores_the_data_and_adopts_the_job(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    [job_name] = [j["name"] for j in emu.state["jobs"].values()]
    data_versions = {name: sorted(d["versions"]) for name, d in emu.state["data"].items()}
    code, _, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve")
    assert code == 0, err
    assert all(v["properties"]["isArchived"] for d in emu.state["data"].values() for v in d["versions"].values()), \
        "destroy --all archives the spec's data versions"

    plan = plan_changes(capsys, spec)
    data = {a: plan[a] for a in ("data.train", "data.test")}  # the registered splits (the sample stays local)
    assert all(c["action"] == "update" and "restored" in " ".join(c["reasons"]) for c in data.values()), \
        "archived data of the same content must be planned as restored: " \
        f"{[(a, c['action'], c['reasons']) for a, c in data.items()]}"
    assert plan["job.finetune"]["action"] == "noop", \
        f"the completed job must be adopted after destroy --all, planned {plan['job.finetune']}"

    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0, f"the re-apply after destroy --all exited {code}: {err[-2000:]}"
    ops = [op for _, op, _ in writes(emu)]
    assert "blob.put" not in ops, f"restoring archived data must not upload it again: {ops}"
    assert {name: sorted(d["versions"]) for name, d in emu.state["data"].items()} == data_versions, \
        "restoring must not register new data versions"
    assert not any(v["properties"]["isArchived"] for d in emu.state["data"].values() for v in d["versions"].values()), \
        "the data versions must be restored (unarchived)"
    assert "jobs.create" not in ops and [j["name"] for j in emu.state["jobs"].values()] == [job_name], \
        f"the completed job {job_name} must be adopted, not trained again: {sorted(emu.state['jobs'])}"
    active = [v for v in emu.state["models"][MODEL]["versions"].values() if not v["properties"]["isArchived"]]
    assert len(active) == 1, f"exactly one active model version after the re-apply: {emu.state['models'][MODEL]}"
    assert len(our_endpoints(emu)) == 1
    assert_zero_write_reapply(emu, capsys, spec, "after the restoring re-apply")


# ---- 5. destroy, status and invoke need only the target ---------------------------------------------------------
def test_status_invoke_destroy_work_without_the_data_folder(emu, workdir, capsys, monkeypatch):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    shutil.rmtree(workdir / "data")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    code, out, err = run(capsys, "status", str(spec), "--json")
    assert code == 0, f"status without the data folder exited {code}: {err[-2000:]}"
    report = {r["address"]: r for r in json.loads(out)["resources"]}
    assert report[ENDPOINT]["exists"], f"status must still see the endpoint: {report[ENDPOINT]}"
    assert report[DEPLOYMENT]["exists"], f"status must still see the deployment: {report[DEPLOYMENT]}"
    [job_name] = [j["name"] for j in emu.state["jobs"].values()]
    job = report["job.finetune"]
    assert job.get("exists") or job.get("latest_run") == job_name, \
        f"status must still find the spec's training job {job_name} by its tags: {job}"

    code, out, err = run(capsys, "invoke", str(spec), "-m", "hello without data")
    assert code == 0, f"invoke --message without the data folder exited {code}: {err[-2000:]}"
    assert "hello without data" in out
    # the smoke-test sample does come from the data: without it, either it still works or it is one clear line
    code, out, err = run(capsys, "invoke", str(spec))
    assert code == 0 or (code == 1 and len(error_lines(err)) == 1 and "--message" in err and "Traceback" not in err), \
        f"invoke without the data and without --message: exit {code}: {err[-2000:]}"

    code, _, err = run(capsys, "destroy", str(spec), "--auto-approve")
    assert code == 0, f"destroy without the data folder exited {code}: {err[-2000:]}"
    assert our_endpoints(emu) == {}, f"destroy must delete the endpoint, left {list(our_endpoints(emu))}"


# ---- 6. drift: a change made outside finetune is reported and set back ------------------------------------------
def test_instance_count_drift_is_reported_and_set_back(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    [name] = our_endpoints(emu)
    client = emu.ml_client()
    deployment = client.online_deployments.get("demo", endpoint_name=name)
    deployment.instance_count = 3  # as in the portal: read, change, write (tags kept)
    client.online_deployments.begin_create_or_update(deployment).result()
    assert emu.state["endpoints"][name]["deployments"]["demo"]["sku"]["capacity"] == 3

    code, out, err = run(capsys, "plan", str(spec))
    assert code == 0, err
    assert "instance_count: 3 -> 1 (changed outside finetune" in out, f"plan must report the drift: {out[-2000:]}"
    plan = plan_changes(capsys, spec)
    assert plan[DEPLOYMENT]["action"] == "update", plan[DEPLOYMENT]
    assert plan["job.finetune"]["action"] == "noop"

    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0, f"the apply setting the drift back exited {code}: {err[-2000:]}"
    ops = [op for _, op, _ in writes(emu)]
    assert "onlineDeployments.create" in ops or "onlineDeployments.update" in ops, ops
    assert not any(op.startswith(("jobs.", "models.", "data.", "computes.")) for op in ops), ops
    assert client.online_deployments.get("demo", endpoint_name=name).instance_count == 1
    assert emu.state["endpoints"][name]["body"]["properties"]["traffic"] == {"demo": 100}
    assert_zero_write_reapply(emu, capsys, spec, "after setting the drift back")


# ---- 7. faults on a re-apply -------------------------------------------------------------------------------------
def test_throttled_reads_on_a_converged_reapply_write_nothing(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    emu.reset_log()
    for op in emu.operations():
        if not op.startswith(NOT_STORMED):
            emu.faults.add(op, "throttle", times=2, retry_after=0)
    code, out, err = apply(capsys, spec)
    assert code == 0, f"a throttled re-apply exited {code}: {err[-2000:]}"
    throttled = sum(1 for r in emu.requests if r.status == 429)
    assert throttled >= 4, f"the storm did not hit the re-apply ({throttled} x 429)"
    assert writes(emu) == [], f"a re-apply with zero changes wrote under 429s on reads: {writes(emu)}"
    assert "Nothing to do" in out
    assert len(emu.state["jobs"]) == 1


@pytest.mark.parametrize("read", ["jobs.list", "models.listVersions", "onlineEndpoints.get"])
def test_a_read_throttled_past_the_retries_fails_the_reapply_without_writing(emu, workdir, capsys, read):
    """A read that never succeeds is not an absence: no new job, version or endpoint is created in its place."""
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    emu.reset_log()
    emu.faults.add(read, "throttle", times=None, retry_after=0)
    fast = RetrySettings(backoff_factor=0.001, backoff_max=0.01)
    with default_options(ClientOptions(transport=emu.transport, credential=emu.credential, polling_interval=0.001,
                                       retry=fast)):
        code, _, err = apply(capsys, spec)
    assert writes(emu) == [], f"a re-apply whose {read} kept answering 429 wrote {writes(emu)}"
    assert code == 1, f"a re-apply that could not read {read} must fail (exit 1), got {code}: {err[-2000:]}"
    assert len(error_lines(err)) == 1 and "429" in err and "Traceback" not in err, err[-2000:]
    assert len(emu.state["jobs"]) == 1
