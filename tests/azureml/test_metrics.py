"""Training metrics on the Azure ML target, read the way Azure ML documents it (MLflow on the workspace's tracking
URI, the pipeline job's child runs): apply's live progress, `status` (text, --json, the PNG), metrics that cannot be
read, and that nothing reads or writes the old `*.metrics.*` job-property convention. Real SDK, real mlflow client,
the in-process emulator."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from emulated import emulated_workspace
from emulated import run_cli as run

from finetune.testing.emulator.runs import run_views
from finetune.testing.emulator.state import seed_text

PROGRESS = re.compile(r"job (\S+): Running, step (\d+), epoch ([\d.]+), loss ([\d.]+)")
DENIED = ("The client 'ci@contoso.com' does not have authorization to perform action "
          "'Microsoft.MachineLearningServices/workspaces/experiments/runs/read'.")


@pytest.fixture
def slow_emu(monkeypatch, fast_stream):
    """An hour of training in about 2 s of wall time: apply polls the job many times while it runs. The first
    metrics read pays mlflow's import (~2.5 s, nothing next to a real job's hour): done here, before the clock runs."""
    import mlflow.store.tracking.rest_store  # noqa: F401

    with emulated_workspace(monkeypatch, 1600.0) as emulator:
        yield emulator


def trainer_history(emu, job: str, key: str) -> list[tuple[int, float]]:
    """What the emulated fine-tune step has logged of `key` so far (the state the emulator holds)."""
    views = run_views(emu.service, emu.state["jobs"][job.lower()], emu.clock.now())
    trainer = next(v for v in views if v["info"]["run_name"] == "chat_completion_finetune")
    return [(m["step"], m["value"]) for m in trainer["history"].get(key, [])]


def job_name(emu) -> str:
    [job] = emu.state["jobs"].values()
    return job["name"]


def test_apply_shows_step_epoch_and_loss_read_through_mlflow(slow_emu, workdir, capsys):
    code, _, err = run(capsys, "apply", str(workdir / "spec.yaml"), "--auto-approve")
    assert code == 0, err
    name = job_name(slow_emu)
    shown = [(int(m[1]), float(m[2]), float(m[3])) for m in PROGRESS.findall(err) if m[0] == name]
    assert len({step for step, _, _ in shown}) >= 2, err  # live: the step moved while apply watched
    assert [s for s, _, _ in shown] == sorted(s for s, _, _ in shown)
    logged = dict(trainer_history(slow_emu, name, "loss"))
    for step, epoch, loss in shown:  # every number shown is what the fine-tune step logged at that step
        assert loss == pytest.approx(logged[step], abs=5e-4)
        assert epoch <= 3.0  # num_train_epochs in the spec
    # the reads ran alongside the job polls, never more often, and apply needed no curves
    requests = slow_emu.requests
    polls = [r for r in requests if r.operation == "jobs.get" and r.path.lower().endswith(f"/jobs/{name.lower()}")]
    searches = [r for r in requests if r.operation == "mlflow.runs.search"]
    by_root = [r for r in searches if r.body["filter"] == f"tags.mlflow.rootRunId = '{name}'"]
    assert 2 <= len(by_root) <= len(polls)
    # the parentRunId walk only ran while no step had started: one search below what there was (job or node)
    [node] = [r["run_id"] for r in slow_emu.state["jobs"][name.lower()]["emulator"]["runs"] if r["parent"] == name]
    walked = [r.body["filter"] for r in searches if r not in by_root]
    assert set(walked) <= {f"tags.mlflow.parentRunId = '{name}'", f"tags.mlflow.parentRunId = '{node}'"}
    assert len(walked) <= len(by_root)
    assert not [r for r in requests if r.operation == "mlflow.metricHistory.get"]
    assert len([r for r in requests if r.operation == "mlflow.experiments.getByName"]) == 1
    tracking = [r for r in requests if r.operation == "workspaces.get"]
    assert tracking, "the tracking URI is read from the workspace"


def test_apply_json_carries_the_final_metrics(slow_emu, workdir, capsys):
    emu = slow_emu
    code, out, err = run(capsys, "apply", str(workdir / "spec.yaml"), "--auto-approve", "--json")
    assert code == 0, err
    result = json.loads(out)
    job = next(s for s in result["steps"] if s["address"] == "job.finetune")["outputs"]
    metrics = job["metrics"]
    assert metrics["latest"] == {"step": 120, "epoch": 3.0, "loss": trainer_history(emu, job["name"], "loss")[-1][1]}
    assert metrics["final"]["train_loss"] > 0 and "train_runtime" in metrics["final"]
    assert set(metrics["evaluation"]["chat_completion_finetune"]) >= {"eval_loss", "eval_runtime"}


def test_status_shows_metrics_scores_and_the_loss_curve(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert run(capsys, "apply", str(spec), "--auto-approve")[0] == 0
    name = job_name(emu)
    code, out, _ = run(capsys, "status", str(spec), "--json")
    assert code == 0
    report = json.loads(out)
    metrics = report["metrics"]
    assert metrics["source"] == "mlflow" and metrics["job"] == name
    assert metrics["history"]["loss"] == [list(p) for p in trainer_history(emu, name, "loss")]
    assert metrics["history"]["eval_loss"] == [list(p) for p in trainer_history(emu, name, "eval_loss")]
    assert len(metrics["history"]["eval_loss"]) == 3  # evaluation_strategy epoch, 3 epochs
    assert metrics["latest"]["step"] == metrics["history"]["loss"][-1][0]
    assert metrics["evaluation"]["chat_completion_finetune"]["eval_loss"] == metrics["history"]["eval_loss"][-1][1]
    steps = list(yaml.safe_load(seed_text("chat_completion_pipeline-0.0.82.yaml"))["jobs"])
    assert {r["name"] for r in metrics["runs"]} == {"node", *steps}  # the pipeline's node and the component's steps
    png = Path(report["loss_png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.is_relative_to(workdir)
    assert report["loss_plot"] and "* loss" in report["loss_plot"][-1] and "o eval_loss" in report["loss_plot"][-1]

    code, text, _ = run(capsys, "status", str(spec))
    assert code == 0
    assert f"metrics of job {name} (mlflow):" in text
    assert f"latest: step {metrics['latest']['step']}, epoch 3, loss" in text
    assert "evaluation (chat_completion_finetune): eval_loss" in text
    assert f"loss curve: {png}" in text and "* loss" in text
    # a second look reads the same numbers and rewrites the same file
    assert json.loads(run(capsys, "status", str(spec), "--json")[1])["metrics"] == metrics


def parent_searches(emu) -> list[str]:
    """The run ids that metrics reads looked for children of (tags.mlflow.parentRunId searches), in order."""
    return [r.body["filter"].split("'")[1] for r in emu.requests if r.operation == "mlflow.runs.search"
            and r.body["filter"].startswith("tags.mlflow.parentRunId")]


@pytest.mark.parametrize("depth", [1, 0], ids=["nodes-only", "none"])
def test_steps_without_root_run_id_are_found_by_parent_run_id(emu, workdir, capsys, depth):
    """A workspace that does not set mlflow.rootRunId below the pipeline's nodes (or at all): the documented
    mlflow.parentRunId, level by level, finds the steps and their metrics all the same."""
    emu.service.root_run_tag_depth = depth
    spec = workdir / "spec.yaml"
    assert run(capsys, "apply", str(spec), "--auto-approve")[0] == 0
    name = job_name(emu)
    emu.reset_log()
    code, out, err = run(capsys, "status", str(spec), "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    steps = list(yaml.safe_load(seed_text("chat_completion_pipeline-0.0.82.yaml"))["jobs"])
    assert {r["name"] for r in metrics["runs"]} == {"node", *steps}
    assert metrics["history"]["loss"] == [list(p) for p in trainer_history(emu, name, "loss")]
    runs = emu.state["jobs"][name.lower()]["emulator"]["runs"]
    [node] = [r["run_id"] for r in runs if r["parent"] == name]
    below = [name] if depth == 0 else []  # nothing carries rootRunId: the walk starts at the job
    searched = parent_searches(emu)  # level by level; the steps' searches ran together, in any order
    assert searched[:len(below) + 1] == [*below, node]
    assert sorted(searched[len(below) + 1:]) == sorted(r["run_id"] for r in runs if r["parent"] == node)


def test_one_levels_searches_run_together(emu, workdir, capsys):
    """The five steps' children are looked for at once: five searches that each take 0.3 s take about that, not
    five times it."""
    import time

    from finetune.backends.azureml.metrics import MlflowReader

    emu.service.root_run_tag_depth = 1
    assert run(capsys, "apply", str(workdir / "spec.yaml"), "--auto-approve")[0] == 0
    name = job_name(emu)
    job = emu.state["jobs"][name.lower()]
    reader = MlflowReader(emu.ml_client().workspaces.get(emu.workspace_name).mlflow_tracking_uri, emu.credential)
    experiment = job["properties"]["experimentName"]
    reader.experiment_id(experiment)
    emu.reset_log()
    emu.faults.add("mlflow.runs.search", "delay", times=None, seconds=0.3)
    start = time.perf_counter()
    found = reader.runs(name, experiment)
    elapsed = time.perf_counter() - start
    assert len(found.runs) == len(job["emulator"]["runs"]) and found.training is not None
    assert len(parent_searches(emu)) == len(job["emulator"]["runs"])  # the node, then each of its 5 steps
    assert elapsed < 0.3 * 5  # three levels: rootRunId, the node's children, the steps' children (together)


def test_runs_lists_each_jobs_metrics_from_mlflow(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert run(capsys, "apply", str(spec), "--auto-approve")[0] == 0
    code, out, err = run(capsys, "runs", str(spec), "--json")
    assert code == 0, err
    [listed] = json.loads(out)["runs"]
    name = job_name(emu)
    assert listed["name"] == name
    assert listed["metrics"]["eval_loss"] == trainer_history(emu, name, "eval_loss")[-1][1]
    assert listed["metrics"]["train_loss"] > 0
    code, text, _ = run(capsys, "runs", str(spec))
    assert code == 0 and "train_loss" in text


def test_unreadable_metrics_are_one_line_and_apply_and_status_go_on(slow_emu, workdir, capsys):
    slow_emu.faults.add("mlflow.*", "error", times=None, status=403, code="AuthorizationFailed", message=DENIED)
    spec = workdir / "spec.yaml"
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 0, err
    said = [line for line in (out + err).splitlines() if "metrics" in line.lower() and "unavailable" in line]
    assert len(said) == 1 and "AuthorizationFailed" in said[0] and "Traceback" not in err
    assert len([r for r in slow_emu.requests if r.operation.startswith("mlflow.")]) == 1  # it stopped asking
    assert "Running" in err and "Completed" in err  # the job's own progress went on

    code, out, err = run(capsys, "status", str(spec))
    assert code == 0, err
    lines = [line for line in out.splitlines() if "metrics cannot be read" in line]
    assert len(lines) == 1 and "AuthorizationFailed" in lines[0] and "loss curve" not in out
    code, out, _ = run(capsys, "status", str(spec), "--json")
    report = json.loads(out)
    assert code == 0 and "metrics" not in report and "loss_png" not in report
    assert [w for w in report["warnings"] if "metrics cannot be read" in w] == report["warnings"][:1]

    code, out, _ = run(capsys, "runs", str(spec), "--json")  # runs too: one note, the listing goes on
    listed = json.loads(out)
    assert code == 0 and listed["runs"][0]["metrics"] == {}
    assert len([n for n in listed["notes"] if "metrics cannot be read" in n and "AuthorizationFailed" in n]) == 1

    slow_emu.faults.clear()  # permission granted: the next status reads them
    report = json.loads(run(capsys, "status", str(spec), "--json")[1])
    assert report["metrics"]["final"]["train_loss"] > 0 and "warnings" not in report


def test_reattached_apply_shows_metrics_of_the_running_job(slow_emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = run(capsys, "apply", str(spec), "--auto-approve", "--detach")
    assert code == 0, err
    code, _, err = run(capsys, "apply", str(spec), "--auto-approve")  # waits on the job the first one submitted
    assert code == 0, err
    assert len(slow_emu.state["jobs"]) == 1
    assert PROGRESS.search(err) or "Completed, step" in err, err


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_no_metrics_job_property_convention_anywhere():
    """Azure ML sets no `*.metrics.*` job properties: neither the product nor the emulator may use them."""
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for p in (root / "finetune").rglob("*.py")
                 if any(".metrics." in s for s in _strings(p))]
    offenders += [str(p.relative_to(root)) for p in [root / "README.md", *(root / "docs").glob("*.md")]
                  if re.search(r"\w\.metrics\.\w", p.read_text(encoding="utf-8"))]
    assert offenders == []
