"""Golden plans: one case per row of the transition table (docs/lifecycle.md), planned offline of any target.

Each folder of tests/plans/cases/ holds the spec, the resolved facts, what the target holds (observed.json) and the
expected plan as text and JSON. `case.json` names the row and, written by hand, the action each address must get.
Regenerate the expected plans with `FINETUNE_REGEN_GOLDEN=1 pytest tests/plans` and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finetune.errors import Diagnostic, Severity
from finetune.plan.model import Observed
from finetune.plan.planner import make_plan
from finetune.render.plan_text import render_plan
from finetune.spec.load import load_spec

from .cases import CASES_DIR, facts_for

REGEN = os.environ.get("FINETUNE_REGEN_GOLDEN") == "1"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir())
TARGET = {"kind": "azureml", "mode": "online", "identity": "azureml:golden", "workspace": "ws-finetune"}
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def plan_case(folder: Path) -> dict:
    loaded = load_spec(folder / "spec.yaml")
    facts = facts_for(loaded, json.loads((folder / "facts.json").read_text()))
    observed = {address: None if entry is None else Observed(**entry)
                for address, entry in json.loads((folder / "observed.json").read_text()).items()}
    meta = json.loads((folder / "case.json").read_text())
    preflight = [Diagnostic(Severity(p["severity"]), p["message"], address=p["address"], hint=p.get("hint", ""))
                 for p in meta["preflight"]]
    plan = make_plan(loaded, facts, observed, target=TARGET, preflight=preflight, created_at=CREATED).to_dict()
    plan["spec_path"] = "spec.yaml"
    for diagnostic in plan["diagnostics"]:  # the checkout's path is no part of the expected plan
        if diagnostic.get("location"):
            diagnostic["location"]["file"] = "spec.yaml"
    # nor is it in the reasons that quote a diagnostic (a blocked change names the spec's file:line)
    return json.loads(json.dumps(plan, default=str).replace(str(folder / "spec.yaml"), "spec.yaml"))


def test_every_row_has_a_case():
    assert len(CASES) >= 25, "the transition table's rows each need a case (python -m tests.plans.cases)"


@pytest.mark.parametrize("case", CASES)
def test_golden_plan(case):
    folder = CASES_DIR / case
    plan = plan_case(folder)
    text = "\n".join(line for line, _style in render_plan(plan, verbose=True)) + "\n"
    data = json.dumps(plan, indent=2, sort_keys=True, default=str) + "\n"
    if REGEN:
        (folder / "plan.txt").write_text(text)
        (folder / "plan.json").write_text(data)
    meta = json.loads((folder / "case.json").read_text())
    actions = {c["address"]: c["action"] for c in plan["changes"]}
    wrong = {a: (actions.get(a), want) for a, want in meta["expect"].items() if actions.get(a) != want}
    assert not wrong, f"{meta['row']}: address -> (planned, expected): {wrong}"
    assert text == (folder / "plan.txt").read_text(), f"{case}: text plan differs from plan.txt"
    assert json.loads(data) == json.loads((folder / "plan.json").read_text()), f"{case}: JSON plan differs"


def test_applying_an_equal_target_writes_nothing():
    plan = plan_case(CASES_DIR / "all-equal")
    assert not plan["has_changes"] and plan["summary"]["noop"] == len(plan["changes"])
