"""A folder of specs: validate, plan and apply each (its own lock), concurrently, with a combined summary; one
failing spec does not stop the others and the exit code is the worst one."""

from __future__ import annotations

import json
import shutil

import pytest
from test_apply import run


def make_folder(workdir, names=("alpha", "beta")):
    folder = workdir / "specs"
    folder.mkdir()
    shutil.move(str(workdir / "data"), folder / "data")
    text = (workdir / "spec.yaml").read_text()
    for name in names:
        (folder / f"{name}.yaml").write_text(text.replace("name: phi3-ultrachat\n", f"name: {name}\n"))
    (folder / "notes.yaml").write_text("just: some yaml\n")  # not a spec: ignored
    return folder


def test_validate_a_folder_reports_each_spec_and_the_worst_code(workdir, capsys):
    folder = make_folder(workdir)
    (folder / "broken.yaml").write_text("apiVersion: finetune/v1\nkind: FineTune\nmetadata: {name: broken}\n")
    code, out, err = run(capsys, "validate", str(folder))
    assert code == 1
    assert "ok             " in out and str(folder / "alpha.yaml") in out and str(folder / "beta.yaml") in out
    assert "error          " in out and "broken.yaml" in out and "notes.yaml" not in out


def test_plan_and_apply_a_folder_against_the_workspace(emu, workdir, capsys):
    folder = make_folder(workdir)
    code, out, err = run(capsys, "plan", str(folder), "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert [s["exit_code"] for s in result["specs"]] == [0, 0]
    assert all(s["result"]["has_changes"] for s in result["specs"])
    code, _, err = run(capsys, "apply", str(folder))
    assert code == 1 and "needs --auto-approve" in err
    code, out, err = run(capsys, "apply", str(folder), "--auto-approve")
    assert code == 0, out + err
    assert len(emu.state["jobs"]) == 2 and len(emu.state["endpoints"]) == 2
    emu.reset_log()
    code, out, _ = run(capsys, "plan", str(folder), "--detailed-exitcode")
    assert code == 0 and emu.writes() == []


def test_a_folder_plan_reads_shared_registry_facts_once_and_each_specs_own_state(emu, workdir, capsys):
    folder = make_folder(workdir, names=("alpha", "beta", "gamma"))
    emu.reset_log()
    code, out, err = run(capsys, "plan", str(folder), "--json")
    assert code == 0, out + err
    operations = [r.operation for r in emu.service.log.records]
    # facts the three specs share, and the workspace's lists of data, models and endpoints: read once between them
    for shared in ("registry.models.getVersion", "registry.components.listVersions", "vmSizes.list", "usages.list",
                   "jobs.list", "data.list", "models.list", "onlineEndpoints.list"):
        assert operations.count(shared) == 1, (shared, operations)
    # none of the specs' own resources exists yet: the lists say so, and nothing is read by name
    for by_name in ("data.listVersions", "data.getVersion", "models.listVersions", "onlineEndpoints.get",
                    "onlineDeployments.list"):
        assert operations.count(by_name) == 0, (by_name, operations)


def plans_by_spec(capsys, target) -> dict[str, dict]:
    """`plan --json` of a spec or a folder, by spec name, without the time each was made."""
    code, out, err = run(capsys, "plan", str(target), "--json")
    assert code == 0, out + err
    result = json.loads(out)
    plans = [s["result"] for s in result["specs"]] if "specs" in result else [result]
    return {p["spec_name"]: {k: v for k, v in p.items() if k != "created_at"} for p in plans}


@pytest.mark.parametrize("page_size", [None, 1], ids=["one page", "paged lists"])
def test_each_spec_of_a_folder_plan_sees_what_its_plan_alone_sees(emu, workdir, capsys, page_size):
    """alpha's resources exist (then are destroyed, its data archived), beta's and gamma's never did. When a list
    spans pages, the specs read their own resources by name, as a plan alone does."""
    folder = make_folder(workdir, names=("alpha", "beta", "gamma"))
    code, _, err = run(capsys, "apply", str(folder / "alpha.yaml"), "--auto-approve")
    assert code == 0, err
    emu.service.page_size = page_size
    for _ in ("applied", "destroyed"):
        alone = {}
        for name in ("alpha", "beta", "gamma"):
            alone.update(plans_by_spec(capsys, folder / f"{name}.yaml"))
        emu.reset_log()
        assert plans_by_spec(capsys, folder) == alone
        data_reads = [r.operation for r in emu.service.log.records].count("data.listVersions")
        assert data_reads == (6 if page_size else 2)  # two data assets a spec; listed on one page, only alpha's
        code, _, err = run(capsys, "destroy", str(folder / "alpha.yaml"), "--all", "--auto-approve")
        assert code == 0, err


def test_a_folder_apply_shares_registry_facts_but_reads_live_state_per_spec(emu, workdir, capsys):
    folder = make_folder(workdir, names=("alpha", "beta"))
    emu.reset_log()
    code, out, err = run(capsys, "apply", str(folder), "--auto-approve")
    assert code == 0, out + err
    operations = [r.operation for r in emu.service.log.records]
    assert operations.count("registry.models.getVersion") == 1
    # one spec's writes must be visible to the other's plan: quota and jobs are read by each
    assert operations.count("usages.list") >= 2 and operations.count("jobs.list") >= 2
