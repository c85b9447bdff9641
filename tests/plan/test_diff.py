"""plan/diff.py on hand-made graphs: exact comparison, the service's case folding, cascades, drift, retirements."""

from __future__ import annotations

from finetune.graph import UNKNOWN, Graph, Resource
from finetune.plan.diff import diff, observed_serial
from finetune.plan.model import Action, Observed


def graph(*resources: Resource) -> Graph:
    return Graph({r.address: r for r in resources})


EP = Resource("endpoint.e", "endpoint", "e", {"name": "e", "auth_mode": "key", "description": "Chat"}, (), "fp-ep")
DEP = Resource("deployment.e/d", "deployment", "d", {"name": "d", "endpoint": "e", "sku": "Standard_NC24ads_A100_v4",
                                                    "instance_count": 1}, ("endpoint.e",), "fp-dep")
TRAFFIC = Resource("traffic.e", "traffic", "e", {"endpoint": "e", "traffic": {"d": 100}}, ("deployment.e/d",), "fp-t")
SMOKE = Resource("smoke_test.e", "smoke_test", "e", {"endpoint": "e"}, ("traffic.e",), "fp-s")


def same(resource: Resource, **changes) -> Observed:
    return Observed(True, {**resource.desired, **changes}, status="Succeeded", fingerprint=resource.fingerprint)


def converged(**overrides) -> dict[str, Observed | None]:
    observed = {EP.address: same(EP), DEP.address: same(DEP), TRAFFIC.address: same(TRAFFIC),
                SMOKE.address: Observed(True, {"endpoint": "e"})}
    observed.update(overrides)
    return observed


def actions(changes) -> dict[str, Action]:
    return {c.address: c.action for c in changes}


def test_converged_target_plans_no_change():
    changes = diff(graph(EP, DEP, TRAFFIC, SMOKE), converged())
    assert set(actions(changes).values()) == {Action.NOOP}


def test_a_case_change_in_a_description_is_a_change():
    changes = diff(graph(EP, DEP, TRAFFIC, SMOKE), converged(**{EP.address: same(EP, description="chat")}))
    assert actions(changes)[EP.address] is Action.UPDATE


def test_sku_case_is_folded_as_the_service_does():
    changes = diff(graph(EP, DEP, TRAFFIC, SMOKE),
                   converged(**{DEP.address: same(DEP, sku="STANDARD_NC24ADS_A100_V4")}))
    assert actions(changes)[DEP.address] is Action.NOOP


def test_drift_is_named_only_when_the_target_holds_finetunes_own_fingerprint():
    drifted = diff(graph(EP, DEP), converged(**{DEP.address: same(DEP, instance_count=3)}))
    assert "changed outside finetune" in next(c for c in drifted if c.address == DEP.address).reasons[0]
    older = Observed(True, {**DEP.desired, "instance_count": 3}, status="Succeeded", fingerprint="older-spec")
    changed = diff(graph(EP, DEP), converged(**{DEP.address: older}))
    assert "changed outside finetune" not in next(c for c in changed if c.address == DEP.address).reasons[0]


def test_replacing_the_endpoint_recreates_what_lives_in_it_and_retires_nothing():
    observed = converged(**{EP.address: same(EP, auth_mode="aml_token"),
                            "retire.e/old": Observed(True, {"name": "old", "endpoint": "e"})})
    got = actions(diff(graph(EP, DEP, TRAFFIC, SMOKE), observed))
    assert got[EP.address] is Action.REPLACE and got[DEP.address] is Action.REPLACE
    assert got[TRAFFIC.address] is Action.UPDATE and got[SMOKE.address] is Action.CREATE
    assert "retire.e/old" not in got  # it goes with the old endpoint


def test_a_removed_deployment_is_deleted_after_traffic():
    changes = diff(graph(EP, DEP, TRAFFIC, SMOKE),
                   converged(**{"retire.e/old": Observed(True, {"name": "old", "endpoint": "e"})}))
    retire = next(c for c in changes if c.address == "retire.e/old")
    assert retire.action is Action.DELETE and set(retire.depends_on) == {TRAFFIC.address, SMOKE.address}


def test_smoke_test_reruns_after_a_change_anywhere_under_it():
    changes = diff(graph(EP, DEP, TRAFFIC, SMOKE), converged(**{DEP.address: same(DEP, instance_count=2)}))
    assert actions(changes)[SMOKE.address] is Action.CREATE


def test_unknown_desired_values_are_changes_with_their_cause():
    job = Resource("job.finetune", "job", "finetune", {"name": "j"}, (), "fp-job")
    model = Resource("model.m", "model", "m", {"name": "m", "version": UNKNOWN}, ("job.finetune",), "fp-job")
    dep = Resource("deployment.e/d", "deployment", "d", {**DEP.desired, "model": f"m@{UNKNOWN}"},
                   ("endpoint.e", "model.m"), "fp-dep")
    observed = converged(**{"job.finetune": None, "model.m": None, dep.address: same(DEP, model="m@1")})
    change = next(c for c in diff(graph(EP, job, model, dep), observed) if c.address == dep.address)
    assert change.action is Action.UPDATE and "model.m changes" in change.reasons[0]


def test_job_attempts():
    job = Resource("job.finetune", "job", "finetune", {"name": "ft-x-a2"}, (), "fp-job")
    retry = Observed(False, details={"failed_attempts": [{"name": "ft-x", "status": "Failed"}], "attempt": 2})
    change = diff(graph(job), {"job.finetune": retry})[0]
    assert change.action is Action.CREATE and "attempt 2 runs as ft-x-a2" in change.reasons[0]
    running = Observed(True, {"name": "ft-x-a2"}, status="Running", details={"name": "ft-x-a2", "attempt": 2})
    assert diff(graph(job), {"job.finetune": running})[0].action is Action.READ
    done = Observed(True, {"name": "ft-x-a2"}, status="Completed", details={"name": "ft-x-a2", "attempt": 2})
    assert diff(graph(job), {"job.finetune": done})[0].action is Action.NOOP


def test_offline_is_all_create_and_the_serial_tracks_what_was_observed():
    assert set(actions(diff(graph(EP, DEP), None)).values()) == {Action.CREATE}
    assert observed_serial(converged()) != observed_serial(converged(**{DEP.address: same(DEP, instance_count=2)}))
    assert observed_serial(None) == "offline"
