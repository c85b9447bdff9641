"""The apply engine with an in-memory backend: order, concurrency, failure isolation, heartbeats, interruption."""

from __future__ import annotations

import re
import threading
import time

import pytest

from finetune import apply as engine
from finetune.backends.base import StepContext
from finetune.errors import FinetuneError
from finetune.graph import Graph, Resource
from finetune.plan.model import Action, Change, Plan
from finetune.state import Journal


def graph_of(edges: dict[str, tuple[str, ...]]) -> tuple[Graph, Plan]:
    resources = {a: Resource(a, a.split(".")[0], a, {}, deps) for a, deps in edges.items()}
    changes = tuple(Change(a, r.kind, Action.CREATE, (), None, {}, r.depends_on) for a, r in resources.items())
    return Graph(resources), Plan("s", "s.yaml", "d", {}, changes, "now")


class FakeBackend:
    target_identity = "fake:"

    def __init__(self, durations: dict[str, float], fail: set[str] = frozenset()) -> None:
        self.durations, self.fail = durations, fail
        self.spans: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def apply(self, change: Change, ctx: StepContext) -> dict:
        start = time.monotonic()
        while time.monotonic() - start < self.durations.get(change.address, 0.0):
            ctx.check_cancelled()
            time.sleep(0.01)
        with self.lock:
            self.spans[change.address] = (start, time.monotonic())
        if change.address in self.fail:
            raise FinetuneError(f"{change.address} broke", hint="fix it")
        return {"upstream": sorted(ctx.outputs)}


LIFECYCLE = {"compute.c": (), "data.train": (), "endpoint.e": (), "job.j": ("compute.c", "data.train"),
             "model.m": ("job.j",), "deployment.d": ("endpoint.e", "model.m"), "traffic.t": ("deployment.d",)}


def run(backend, tmp_path, edges=LIFECYCLE, **kwargs):
    graph, plan = graph_of(edges)
    events: list[engine.ProgressEvent] = []
    result = engine.run_changes(plan, graph, backend, {}, Journal(tmp_path / "j.jsonl"), events.append, **kwargs)
    return result, events


def test_dependency_order_and_concurrency(tmp_path):
    backend = FakeBackend({"job.j": 0.3, "endpoint.e": 0.2})
    result, _ = run(backend, tmp_path)
    assert result.ok
    spans = backend.spans
    for address, deps in LIFECYCLE.items():
        for dep in deps:
            assert spans[dep][1] <= spans[address][0]
    # the endpoint is created while the job trains
    assert spans["endpoint.e"][0] < spans["job.j"][1] and spans["job.j"][0] < spans["endpoint.e"][1]
    assert result.steps["deployment.d"].outputs["upstream"] == sorted(
        ["compute.c", "data.train", "endpoint.e", "job.j", "model.m"])


def test_failure_skips_dependents_and_lets_independent_work_finish(tmp_path):
    backend = FakeBackend({"endpoint.e": 0.2}, fail={"job.j"})
    result, events = run(backend, tmp_path)
    status = {a: s.status for a, s in result.steps.items()}
    assert status["job.j"] == "failed" and result.steps["job.j"].hint == "fix it"
    assert status["model.m"] == status["deployment.d"] == status["traffic.t"] == "skipped"
    assert status["endpoint.e"] == "ok"
    assert result.steps["model.m"].message == "skipped: job.j failed"
    assert any(e.kind == "skipped" and e.address == "traffic.t" for e in events)


def test_unexpected_exception_is_a_failed_step_not_a_crash(tmp_path):
    class Broken(FakeBackend):
        def apply(self, change, ctx):
            if change.address == "data.train":
                raise KeyError("boom")
            return super().apply(change, ctx)

    result, _ = run(Broken({}), tmp_path)
    assert result.steps["data.train"].status == "failed"
    assert "bug in finetune" in result.steps["data.train"].hint
    assert result.steps["endpoint.e"].status == "ok"


def test_heartbeat_says_what_runs_and_what_comes_next(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "HEARTBEAT_SECONDS", 0.1)
    result, events = run(FakeBackend({"job.j": 0.8}), tmp_path)
    beats = [e for e in events if e.kind == "status" and "still running" in e.message]
    assert result.ok and beats
    assert any(e.address == "job.j" and "model.m" in e.message and e.elapsed > 0 for e in beats)


def test_a_silent_step_is_never_silent_for_long_and_a_reporting_one_gets_no_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "QUIET_SECONDS", 0.2)

    class Chatty(FakeBackend):
        def apply(self, change, ctx):
            if change.address == "endpoint.e":  # reports often: never needs a heartbeat
                for _ in range(12):
                    ctx.report("provisioning")
                    time.sleep(0.1)
            return super().apply(change, ctx)

    result, events = run(Chatty({"job.j": 2.2}), tmp_path)
    assert result.ok
    job = [e.elapsed for e in events if e.address == "job.j" and e.kind == "status"]
    assert len(job) >= 3  # silent for 2.2 s: said to be running every 0.2 s, give or take the 0.5 s poll
    assert max(b - a for a, b in zip([0.0, *job], job, strict=False)) <= 0.2 + 0.5 + 0.3
    assert not [e for e in events if e.address == "endpoint.e" and "still running" in e.message]


def test_heartbeat_gap_grows_with_the_steps_age_up_to_the_cap():
    assert not engine.heartbeat_due(1.0, engine.QUIET_SECONDS - 0.1)
    assert engine.heartbeat_due(1.0, engine.QUIET_SECONDS)
    assert not engine.heartbeat_due(80.0, engine.QUIET_SECONDS)  # an 80 s wait may be quiet for 20 s
    assert engine.heartbeat_due(80.0, 20.0)
    assert engine.heartbeat_due(3600.0, engine.HEARTBEAT_SECONDS)
    assert not engine.heartbeat_due(3600.0, engine.HEARTBEAT_SECONDS - 1)


def test_training_progress_reaches_the_printer_as_the_shared_training_line(tmp_path):
    from finetune.backends.base import TrainingProgress
    from finetune.render.progress import progress_printer

    class Training(FakeBackend):
        def apply(self, change, ctx):
            if change.address == "job.j":
                ctx.report_training(TrainingProgress(phase="loading model"))
                for step in (0, 50, 100):
                    ctx.report_training(TrainingProgress(step=step, total_steps=200, loss=1.0 / (step + 1)))
                    time.sleep(0.1)
            return super().apply(change, ctx)

    lines: list[str] = []
    graph, plan = graph_of({"job.j": ()})
    engine.run_changes(plan, graph, Training({}), {}, Journal(tmp_path / "j.jsonl"), progress_printer(lines.append))
    shown = [line.split(" ", 2)[2] for line in lines if " job.j " in line and "create" not in line]
    assert shown[0] == "loading model"
    assert shown[1] == "step 0/200 (0%) loss 1.00"
    assert re.fullmatch(r"step 50/200 \(25%\) loss 0\.02 eta 0:0\d", shown[2]), shown
    assert re.fullmatch(r"step 100/200 \(50%\) loss 9\.9e-03 eta 0:0\d", shown[3]), shown


def test_cancellation_interrupts_running_steps_and_starts_nothing_new(tmp_path):
    cancelled = threading.Event()
    timer = threading.Timer(0.2, cancelled.set)
    timer.start()
    result, _ = run(FakeBackend({"job.j": 5.0}), tmp_path, cancelled=cancelled)
    assert result.steps["job.j"].status == "interrupted"
    assert result.steps["model.m"].status == "skipped"
    assert not result.ok


@pytest.mark.parametrize("edges", [{"a.x": ("b.y",), "b.y": ("a.x",)}])
def test_cycles_are_reported_with_their_path(edges):
    graph, _ = graph_of(edges)
    with pytest.raises(ValueError, match="dependency cycle"):
        graph.order()


def test_input_changes_explain_a_new_training_run():
    from finetune.plan.diff import input_changes

    before = {"model": "m@14", "component": "c@1", "data": {"train": "a" * 64}, "parameters": {"lr": 1, "x": 2}}
    after = {"model": "m@15", "component": "c@1", "data": {"train": "b" * 64}, "parameters": {"lr": 2, "y": 3}}
    assert input_changes(before, after) == [
        "base model m@14 -> m@15", "train data sha256 aaaaaaaaaa.. -> bbbbbbbbbb..", "lr 1 -> 2", "x 2 -> (unset)",
        "y (unset) -> 3"]
    assert input_changes(after, after) == []


def test_a_result_that_differs_from_the_plan_fails_the_step(tmp_path):
    resources = {"deployment.e/d": Resource("deployment.e/d", "deployment", "d", {"name": "d", "instance_count": 2})}
    change = Change("deployment.e/d", "deployment", Action.UPDATE, (), None, {}, ())
    plan = Plan("s", "s.yaml", "d", {}, (change,), "now")

    class Reporting:
        target_identity = "fake:"

        def __init__(self, count: int) -> None:
            self.count = count

        def apply(self, change, ctx):
            return {"name": "d", "instance_count": self.count}

    for count, status in ((2, "ok"), (3, "failed")):
        result = engine.run_changes(plan, Graph(resources), Reporting(count), {}, Journal(tmp_path / "j.jsonl"),
                                    lambda _e: None)
        step = result.steps["deployment.e/d"]
        assert step.status == status, step.message
    assert "instance_count 3 where the plan wanted 2" in step.message
