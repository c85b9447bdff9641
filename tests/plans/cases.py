"""The transition table (docs/lifecycle.md) as golden plan cases: one folder per row under tests/plans/cases/.

Each case is the base spec with optional edits, and what the target holds: the converged state of the base spec
with optional changes. `python -m tests.plans.cases` (from the repo root) writes each folder's spec.yaml,
facts.json, observed.json and case.json; `FINETUNE_REGEN_GOLDEN=1 pytest tests/plans` then writes the expected
plans (plan.txt, plan.json), which are reviewed like code. `expect` is written by hand: the action each row must
give, checked independently of the snapshots.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CASES_DIR = HERE / "cases"
BASE_SPEC = HERE / "base.yaml"

EP = "endpoint.ultrachat-completion"
DEP = "deployment.ultrachat-completion/demo"
TRAFFIC = "traffic.ultrachat-completion"
SMOKE = "smoke_test.ultrachat-completion"
COMPUTE = "compute.gpu-cluster-big"
JOB = "job.finetune"
MODEL = "model.Phi-3-mini-4k-instruct-ultrachat-200k"

Observed = dict[str, dict[str, Any] | None]


@dataclass
class Case:
    name: str
    row: str  # the table row, as docs/lifecycle.md words it
    expect: dict[str, str]  # address -> action
    spec_edits: tuple[tuple[str, str], ...] = ()
    target: Callable[[Observed], None] | None = None  # changes to the converged target
    facts: dict[str, Any] = field(default_factory=dict)
    preflight: tuple[dict[str, Any], ...] = ()


def _set(address: str, **changes: Any) -> Callable[[Observed], None]:
    def change(observed: Observed) -> None:
        entry = observed[address]
        assert entry is not None
        for key, value in changes.items():
            if key in ("status", "managed", "fingerprint", "exists"):
                entry[key] = value
            elif key.startswith("details."):
                entry["details"][key.split(".", 1)[1]] = value
            else:
                entry["properties"][key] = value
    return change


def _absent(*addresses: str) -> Callable[[Observed], None]:
    def change(observed: Observed) -> None:
        for address in addresses:
            observed[address] = None
    return change


def _all(*changes: Callable[[Observed], None]) -> Callable[[Observed], None]:
    def change(observed: Observed) -> None:
        for one in changes:
            one(observed)
    return change


def _drift(address: str, **changes: Any) -> Callable[[Observed], None]:
    """Changed outside finetune: the target still carries the fingerprint finetune wrote, the values differ."""
    return _set(address, **changes)


def _spec_changed(address: str, **changes: Any) -> Callable[[Observed], None]:
    """What an earlier spec made: other values, and the fingerprint of that earlier spec."""
    return _set(address, fingerprint="0" * 64, **changes)


def _job(status: str, **details: Any) -> Callable[[Observed], None]:
    return _set(JOB, status=status, **{f"details.{k}": v for k, v in details.items()})


def _failed_attempts(observed: Observed) -> None:
    observed[JOB] = {"exists": False, "properties": {}, "status": None, "managed": True, "fingerprint": None,
                     "details": {"failed_attempts": [{"name": "<job>", "status": "Failed"}], "attempt": 2}}


def _previous_run(observed: Observed) -> None:
    observed[JOB] = {"exists": False, "properties": {}, "status": None, "managed": True, "fingerprint": None,
                     "details": {"previous": "ft-phi3-ultrachat-000000000000", "previous_inputs": {
                         "model": "azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15",
                         "component": "azureml/chat_completion_pipeline@0.0.82",
                         "data": {"train": "a" * 64, "test": "b" * 64},
                         "parameters": {"learning_rate": 2e-05}}}}
    observed[MODEL] = None


def _retired(observed: Observed) -> None:
    observed["retire.ultrachat-completion/old"] = {
        "exists": True, "properties": {"name": "old", "endpoint": "<endpoint>"}, "status": "Succeeded",
        "managed": True, "fingerprint": "1" * 64, "details": {}}


NEW_DATA = {"data_hashes": {"train": "d" * 64, "test": "b" * 64, "sample": "c" * 64}, "registered_version": None}

CASES = [
    # every kind: absent, equal
    Case("all-absent", "every kind: absent -> create", {COMPUTE: "create", "data.train": "create", JOB: "create",
         MODEL: "create", EP: "create", DEP: "create", TRAFFIC: "create", SMOKE: "create"},
         target=_absent(COMPUTE, "data.train", "data.test", JOB, MODEL, EP, DEP, TRAFFIC, SMOKE)),
    Case("all-equal", "every kind: present and equal -> noop (apply writes nothing)",
         {COMPUTE: "noop", "data.train": "noop", JOB: "noop", MODEL: "noop", EP: "noop", DEP: "noop",
          TRAFFIC: "noop", SMOKE: "noop"}),
    # compute
    Case("compute-update", "compute: changed in place (max_instances) -> update",
         {COMPUTE: "update", JOB: "noop", SMOKE: "noop"},
         spec_edits=(("max_instances: 2", "max_instances: 4"),)),
    Case("compute-replace", "compute: size changed -> replace (the job does not re-run: compute is not a "
         "training input)", {COMPUTE: "replace", JOB: "noop"},
         spec_edits=(("sku: Standard_NC24ads_A100_v4   # training", "sku: Standard_NC48ads_A100_v4   # training"),)),
    Case("compute-not-ours", "compute: exists, not created by finetune -> used as it is (noop)",
         {COMPUTE: "noop"}, spec_edits=(("max_instances: 2", "max_instances: 4"),),
         target=_set(COMPUTE, managed=False)),
    Case("compute-provisioning", "compute: still in progress -> read (wait)", {COMPUTE: "read"},
         target=_set(COMPUTE, status="Creating")),
    Case("compute-failed", "compute: left failed -> replace", {COMPUTE: "replace"},
         target=_set(COMPUTE, status="Failed")),
    Case("compute-drift", "compute: changed outside finetune -> update back", {COMPUTE: "update"},
         target=_drift(COMPUTE, max_instances=8)),
    # data
    Case("data-changed", "data: content changed -> a new version (create) and training runs again",
         {"data.train": "create", JOB: "create", MODEL: "create", DEP: "update", SMOKE: "create"},
         facts=NEW_DATA, target=_all(_absent("data.train"), _previous_run)),
    Case("data-archived", "data: archived by destroy --all -> restored (update), training is adopted",
         {"data.train": "update", JOB: "noop"}, target=_set("data.train", status="Archived")),
    Case("data-not-ours", "data: the same content registered by someone else -> used as it is",
         {"data.train": "noop"}, target=_set("data.train", managed=False)),
    # job
    Case("job-running", "job: still in progress -> read (re-attach, never a second job)",
         {JOB: "read", MODEL: "create"}, target=_all(_job("Running"), _absent(MODEL))),
    Case("job-failed-retry", "job: every attempt failed -> create the next attempt (deterministic name)",
         {JOB: "create", MODEL: "create"}, facts={"job_attempt": 2},
         target=_all(_failed_attempts, _absent(MODEL))),
    Case("job-inputs-changed", "job: a training input changed -> create, saying what changed",
         {JOB: "create", MODEL: "create", DEP: "update", SMOKE: "create"},
         spec_edits=(("learning_rate: 5e-6", "learning_rate: 2e-5"),), facts={"registered_version": None},
         target=_previous_run),
    # endpoint
    Case("endpoint-update", "endpoint: changed in place (description) -> update",
         {EP: "update", DEP: "noop", TRAFFIC: "noop"},
         spec_edits=(("auth_mode: key", "auth_mode: key\n  description: chat completions"),)),
    Case("endpoint-replace", "endpoint: auth_mode changed -> replace, which re-creates its deployments, then "
         "traffic, then the smoke test", {EP: "replace", DEP: "replace", TRAFFIC: "update", SMOKE: "create"},
         spec_edits=(("auth_mode: key", "auth_mode: aml_token"),)),
    Case("endpoint-failed", "endpoint: left failed -> replace, with what lives in it",
         {EP: "replace", DEP: "replace", TRAFFIC: "update", SMOKE: "create"}, target=_set(EP, status="Failed")),
    Case("endpoint-provisioning", "endpoint: still in progress -> read (wait)", {EP: "read"},
         target=_set(EP, status="Creating")),
    Case("endpoint-not-ours", "endpoint: the name is taken by an endpoint of no spec or another -> blocked",
         {EP: "noop"}, target=_set(EP, managed=False),
         preflight=({"severity": "error", "message": "endpoint name ultrachat-completion-<suffix> is taken by an "
                     "endpoint this spec does not manage", "address": EP,
                     "hint": "set endpoint.unique_suffix: true or choose another name"},)),
    # deployment
    Case("deployment-update", "deployment: changed in place (instance_count) -> update",
         {DEP: "update", TRAFFIC: "noop", SMOKE: "create"},
         spec_edits=(("instance_count: 1", "instance_count: 2"),)),
    Case("deployment-drift", "deployment: changed outside finetune (instance_count 1 -> 3) -> update back",
         {DEP: "update", SMOKE: "create"}, target=_drift(DEP, instance_count=3)),
    Case("deployment-failed", "deployment: left failed -> replace", {DEP: "replace", SMOKE: "create"},
         target=_set(DEP, status="Failed")),
    Case("deployment-provisioning", "deployment: still in progress -> read (wait)", {DEP: "read"},
         target=_set(DEP, status="Updating")),
    Case("deployment-removed", "deployment: removed from the spec -> delete, after traffic moved",
         {"retire.ultrachat-completion/old": "delete", TRAFFIC: "noop"}, target=_retired),
    Case("deployment-spec-changed", "deployment: the spec changed it (the target holds an older fingerprint)",
         {DEP: "update"}, target=_spec_changed(DEP, request_timeout_ms=60000)),
    # traffic, smoke test
    Case("traffic-drift", "traffic: moved outside finetune -> routed back", {TRAFFIC: "update", SMOKE: "create"},
         target=_drift(TRAFFIC, traffic={})),
    Case("smoke-not-run", "smoke test: not run for this model -> create", {SMOKE: "create"},
         target=_absent(SMOKE)),
    # budget
    Case("budget-exceeded", "job, deployment: the estimate is over the spec's budget -> blocked, with the figures",
         {JOB: "create", DEP: "create", EP: "create"},
         spec_edits=(("smoke_test:\n", "budget:\n  max_training_usd: 5\n  max_endpoint_usd_per_day: 50\n\n"
                      "smoke_test:\n"),),
         target=_absent(COMPUTE, "data.train", "data.test", JOB, MODEL, EP, DEP, TRAFFIC, SMOKE)),
    Case("budget-within", "job, deployment: the estimate is within the spec's budget -> not blocked",
         {JOB: "create", DEP: "update"}, spec_edits=(("smoke_test:\n", "budget:\n  max_training_usd: 50\n  "
                                                     "max_endpoint_usd_per_day: 100\n\nsmoke_test:\n"),
                                                    ("learning_rate: 5e-6", "learning_rate: 2e-5")),
         facts={"registered_version": None}, target=_previous_run),
]


def converged(graph: Any) -> Observed:
    """What the target holds once the base spec is applied, in the shape the Azure ML backend observes."""
    observed: Observed = {}
    for address, r in graph.resources.items():
        d = r.desired
        entry = {"exists": True, "properties": {}, "status": None, "managed": True, "fingerprint": r.fingerprint,
                 "details": {}}
        if r.kind == "compute":
            entry.update(properties=dict(d), status="Succeeded")
        elif r.kind == "data":
            entry["properties"] = {k: d[k] for k in ("name", "version", "sha256", "type")}
        elif r.kind == "job":
            entry.update(properties={"name": d["name"]}, status="Completed", fingerprint=None,
                         details={"name": d["name"], "attempt": 1})
        elif r.kind == "model":
            entry["properties"] = {"name": d["name"], "version": d["version"], "description": d["description"],
                                   "job": d["job"], "type": "mlflow_model"}
        elif r.kind == "endpoint":
            entry.update(properties=dict(d), status="Succeeded", details={"traffic": {"demo": 100}})
        elif r.kind == "deployment":
            entry.update(properties=dict(d), status="Succeeded")
        elif r.kind == "traffic":
            entry["properties"] = dict(d)
        elif r.kind == "smoke_test":
            entry.update(properties={"endpoint": d["endpoint"]}, fingerprint=None)
        observed[address] = entry
    return observed


def base_facts() -> dict[str, Any]:
    return {"workspace_identity": "00000000-0000-0000-0000-000000000000/rg-finetune/ws-finetune",
            "model_version": "15",
            "model_id": "azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15",
            "component_version": "0.0.82", "gpus_per_node": 1, "registered_version": "1",
            "data_hashes": {"train": "a" * 64, "test": "b" * 64, "sample": "c" * 64},
            # illustrative counts of about the size of 5% of ultrachat_200k, so the estimate shows real hours
            "data_stats": {"train": {"rows": 10000, "turns": 60000, "chars": 48000000, "approx_tokens": 12000000,
                                     "max_row_approx_tokens": 4000},
                           "test": {"rows": 1000, "turns": 6000, "chars": 4800000, "approx_tokens": 1200000,
                                    "max_row_approx_tokens": 4000},
                           "sample": {"rows": 1000, "turns": 6000, "chars": 4800000, "approx_tokens": 1200000,
                                      "max_row_approx_tokens": 4000}}}


def facts_for(loaded: Any, values: dict[str, Any]) -> Any:
    """The resolved facts of a case: the offline ones (catalog defaults) plus what the target resolved."""
    from finetune.plan.planner import offline_facts

    facts = offline_facts(loaded, values.get("data_hashes"), values.get("workspace_identity"))
    return replace(facts, **{k: v for k, v in values.items() if k not in ("data_hashes", "workspace_identity")})


def build() -> None:
    from finetune.graph import build_graph
    from finetune.spec.load import load_spec

    base = load_spec(BASE_SPEC)
    start = converged(build_graph(base.spec, facts_for(base, base_facts())))
    shutil.rmtree(CASES_DIR, ignore_errors=True)
    for case in CASES:
        folder = CASES_DIR / case.name
        folder.mkdir(parents=True)
        text = BASE_SPEC.read_text().replace("path: ../fixtures/", "path: ../../../fixtures/")  # two levels down
        for old, new in case.spec_edits:
            assert old in text, f"{case.name}: {old!r} not in the base spec"
            text = text.replace(old, new)
        (folder / "spec.yaml").write_text(text)
        observed = copy.deepcopy(start)
        if case.target is not None:
            case.target(observed)
        facts = {**base_facts(), **case.facts}
        (folder / "facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
        (folder / "observed.json").write_text(json.dumps(observed, indent=2, sort_keys=True) + "\n")
        meta = {k: v for k, v in asdict(case).items() if k in ("row", "expect", "preflight")}
        (folder / "case.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    build()
