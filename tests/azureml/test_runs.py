"""`finetune runs` on the Azure ML target: the spec's jobs listed by finetune's tags through the real SDK against the
emulator, newest first, what changed, the version registered from each and the one deployed; reads only."""

from __future__ import annotations

import json

import pytest
from test_apply import apply, edit, run


def runs_json(capsys, spec, *extra: str) -> dict:
    code, out, err = run(capsys, "runs", str(spec), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_runs_lists_jobs_newest_first_with_changes_models_and_deployed_version(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert runs_json(capsys, spec)["runs"] == []  # nothing trained yet
    assert apply(capsys, spec)[0] == 0
    edit(spec, "learning_rate: 5e-6", "learning_rate: 1e-5")
    assert apply(capsys, spec)[0] == 0
    emu.reset_log()

    report = runs_json(capsys, spec)
    assert emu.write_count() == 0, [(r.method, r.path) for r in emu.writes()]
    jobs = emu.state["jobs"]
    assert len(report["runs"]) == len(jobs) == 2
    newest, first = report["runs"]
    assert {newest["name"], first["name"]} == {j["name"] for j in jobs.values()}
    assert newest["started"] > first["started"]
    assert newest["changed"] == ["learning_rate 5e-06 -> 1e-05"]
    assert first["changed"] is None
    assert newest["fingerprint"] != first["fingerprint"]
    assert jobs[newest["name"].lower()]["properties"]["tags"]["finetune.fingerprint"] == newest["fingerprint"]
    model = "Phi-3-mini-4k-instruct-ultrachat-200k"
    assert (first["model"], newest["model"]) == (f"{model}@1", f"{model}@2")
    assert newest["status"] == first["status"] == "Completed"
    # duration: the span of the job's step runs in the workspace's MLflow; cost: that at the compute's list price
    from finetune import catalog

    price = catalog.find_sku("Standard_NC24ads_A100_v4").usd_per_hour
    for listed in (newest, first):
        assert listed["duration_s"] > 0
        assert listed["usd"] == pytest.approx(listed["duration_s"] / 3600 * price, abs=0.01)
    # the deployment serves the newest version
    assert list(report["deployed"].values()) == [f"{model}@2"]
    assert newest["deployed"] and not first["deployed"]

    compared = runs_json(capsys, spec, "--compare", "2", "1")
    assert compared["a"]["name"] == first["name"] and compared["b"]["name"] == newest["name"]
    assert compared["changed"] == ["learning_rate 5e-06 -> 1e-05"]

    code, out, _ = run(capsys, "runs", str(spec))
    assert code == 0
    assert newest["name"] in out and "<- deployed" in out and "learning_rate 5e-06 -> 1e-05" in out


def test_runs_ignores_jobs_of_other_specs_and_unknown_compare_refs_fail_in_one_line(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert apply(capsys, spec)[0] == 0
    other = workdir / "other.yaml"
    other.write_text(spec.read_text().replace("name: phi3-ultrachat\n", "name: someone-else\n", 1))
    assert runs_json(capsys, other)["runs"] == []
    assert len(runs_json(capsys, spec)["runs"]) == 1

    code, out, err = run(capsys, "runs", str(spec), "--compare", "1", "nosuchjob")
    assert code == 1
    assert "--compare: no run matches 'nosuchjob'" in err and "Traceback" not in err
