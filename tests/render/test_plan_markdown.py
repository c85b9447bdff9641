"""`finetune plan --format markdown`: the pull-request view, rendered from `Plan.to_dict()` (the same data as --json).

Golden files under tests/render/golden/: the plans of some golden plan cases (tests/plans/cases/) and an offline plan
of the example through the CLI. Regenerate with `FINETUNE_REGEN_GOLDEN=1 pytest tests/render` and review the diff.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
from plans.cases import CASES_DIR
from plans.test_golden import plan_case

from finetune.cli import main
from finetune.render.markdown import md_code, md_text
from finetune.render.templates import render_template

REGEN = os.environ.get("FINETUNE_REGEN_GOLDEN") == "1"
GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "phi3-ultrachat.yaml"
CASES = ["all-absent", "endpoint-replace", "endpoint-not-ours", "deployment-drift", "job-failed-retry",
         "budget-exceeded"]
SUMMARY_LABELS = {"create": "to create", "update": "to update", "replace": "to replace", "delete": "to destroy",
                  "read": "to wait for", "noop": "unchanged"}


def render(plan: dict) -> str:
    return render_template("plan.md.j2", plan=plan)


def cells(row: str) -> list[str]:
    """A table row's cells, split on `|` that is not escaped (GitHub's rule, code spans included)."""
    assert row.startswith("|") and row.endswith("|"), row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row[1:-1])]


def tables(text: str) -> list[list[list[str]]]:
    """Every table: consecutive lines that start with `|`, as rows of cells (the delimiter row left out)."""
    found, current = [], []
    for line in [*text.split("\n"), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    parsed = []
    for block in found:
        assert len(block) >= 2 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", block[1]), f"no delimiter row: {block[:2]}"
        parsed.append([cells(block[0]), *[cells(r) for r in block[2:]]])
        assert len(cells(block[1])) == len(parsed[-1][0]), f"delimiter row does not match the header: {block[:2]}"
    return parsed


def check_structure(text: str) -> None:
    assert text.startswith("### finetune plan: ")
    assert text.endswith("\n") and not text.endswith("\n\n"), "ends with exactly one newline"
    assert "\n\n\n" not in text, "no runs of blank lines"
    assert "built-in method" not in text and "((" not in text and "))" not in text
    assert not any(line != line.rstrip() for line in text.split("\n")), "no trailing whitespace"
    assert text.count("<details>") == text.count("</details>")
    for table in tables(text):
        width = len(table[0])
        for row in table[1:]:
            assert len(row) == width, f"row has {len(row)} cells, the header {width}: {row}"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.md"
    if REGEN:
        path.write_text(text)
    assert text == path.read_text(), f"{name}: markdown plan differs from {path.name}"


def summary_counts(text: str) -> dict[str, int]:
    summary = next(t for t in tables(text) if t[0][0] == "to create")
    return dict(zip(summary[0], map(int, summary[1]), strict=True))


@pytest.fixture(scope="module")
def plans() -> dict[str, dict]:
    return {case: plan_case(CASES_DIR / case) for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_golden_markdown(case, plans):
    plan = plans[case]
    text = render(plan)
    check_structure(text)
    check_golden(case, text)
    # The same data as --json: rendering the JSON document gives the same markdown, every time.
    assert render(json.loads(json.dumps(plan, default=str))) == text
    assert render(copy.deepcopy(plan)) == text
    counts = summary_counts(text)
    assert counts == {label: plan["summary"][action] for action, label in SUMMARY_LABELS.items()}
    # Changes are listed, unchanged ones only counted (unless blocked).
    listed = {c["address"] for c in plan["changes"] if c["action"] != "noop" or c["blocked_by"]}
    changes = next(t for t in tables(text) if t[0] == ["", "resource", "why"])
    assert {row[1].strip("`") for row in changes[1:]} == listed
    unchanged = sum(1 for c in plan["changes"] if c["action"] == "noop" and not c["blocked_by"])
    if unchanged:
        assert f"\n{unchanged} unchanged resource{'s' if unchanged != 1 else ''} not listed.\n" in text
    pins = next(t for t in tables(text) if t[0][:2] == ["pin", "name"])
    assert [row[1].strip("`") for row in pins[1:]] == [p["name"] for p in plan["pins"]]
    assert "<details><summary>Fine-tuning parameters:" in text


def test_blocked_reasons_come_first_with_the_fix(plans):
    plan = plans["endpoint-not-ours"]
    assert plan["blocked"]
    text = render(plan)
    blocked = text.index("#### :no_entry: Blocked")
    assert blocked < text.index("#### Changes")
    assert ("- `endpoint.ultrachat-completion`: endpoint name ultrachat-completion-\\<suffix\\> is taken by an "
            "endpoint this spec does not manage<br>**Fix:** set endpoint.unique\\_suffix: true or choose another "
            "name\n") in text
    assert "| `=` | `endpoint.ultrachat-completion` | **blocked:** the name is taken" in text
    assert "#### Diagnostics" not in text  # the one error is the blocked reason, shown once
    for case in ("all-absent", "deployment-drift"):
        assert "Blocked" not in render(plans[case])


def test_changes_show_symbol_address_and_every_reason(plans):
    text = render(plans["endpoint-replace"])
    assert ("| `-/+` | `endpoint.ultrachat-completion` | auth\\_mode: 'key' -\\> 'aml\\_token'<br>auth\\_mode cannot "
            "change in place") in text
    assert "| `~` | `traffic.ultrachat-completion` |" in text
    assert "_`+` create, `~` update, `-/+` replace_" in text


def test_pins_say_whether_the_lock_file_pinned_them(plans):
    plan = copy.deepcopy(plans["all-absent"])
    text = render(plan)
    assert "| base model | `azureml/Phi-3-mini-4k-instruct` | `latest` | `15` | not pinned |" in text
    assert "None of these is pinned by a lock file yet" in text
    plan["pins"][0]["locked"] = True
    text = render(plan)
    assert "| base model | `azureml/Phi-3-mini-4k-instruct` | `latest` | `15` | pinned |" in text
    assert "| component | `azureml/chat_completion_pipeline` | `latest` | `0.0.82` | not pinned |" in text
    assert "None of these is pinned" not in text


def test_cells_escape_pipes_newlines_and_markup(plans):
    plan = copy.deepcopy(plans["deployment-drift"])
    change = next(c for c in plan["changes"] if c["action"] == "update")
    change["reasons"] = ["a | b\nc <d> *e* `f`"]
    plan["parameters"][0]["value"] = "x|y`z\nw"
    plan["parameters"][0]["note"] = "n|o"
    plan["pins"][0]["requested"] = "``"
    plan["diagnostics"] = [{"severity": "warning", "message": "line one\nline | two", "hint": "do _this_",
                            "path": "spec.training", "address": "", "location": None}]
    text = render(plan)
    check_structure(text)
    assert "| a \\| b<br>c \\<d\\> \\*e\\* \\`f\\` |" in text
    assert "| ``x\\|y`z w`` |" in text
    assert "(n\\|o) |" in text
    assert "| ``` `` ``` |" in text
    assert "- **warning** `spec.training`: line one<br>line \\| two (fix: do \\_this\\_)\n" in text


def test_escaping_helpers():
    assert md_text("a|b\r\nc_d") == "a\\|b<br>c\\_d"
    assert md_code("") == '`""`'
    assert md_code("a`b") == "``a`b``"
    assert md_code("`a") == "`` `a ``"
    assert md_code(True) == "`True`"


def test_workspace_is_described_sensibly(plans):
    plan = copy.deepcopy(plans["all-absent"])
    assert "- **Target:** azureml, workspace `ws-finetune`\n" in render(plan)
    plan["target"] = {"kind": "azureml", "mode": "offline",
                      "workspace": "ws (resource group rg, subscription sub)"}
    text = render(plan)
    assert "- **Target:** azureml, workspace `ws` (resource group rg, subscription sub)\n" in text
    assert "**Offline plan:** the target was not read" in text
    plan["target"] = {"kind": "azureml", "mode": "offline", "workspace": "(workspace not set)"}
    assert "- **Target:** azureml, workspace not set\n" in render(plan)
    plan["target"] = {"kind": "local", "mode": "online", "identity": "local:/tmp/x"}
    text = render(plan)
    assert "- **Target:** local\n" in text and "Offline plan" not in text


def test_offline_plan_of_the_example_through_the_cli(capsys, monkeypatch, tmp_path):
    for var in [v for v in os.environ if v.startswith(("AZURE_", "AZUREML_"))]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)  # no config.json is found from here
    with pytest.raises(SystemExit) as info:
        main(["plan", str(EXAMPLE), "--offline", "--format", "markdown"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    check_structure(out)
    assert f"- **Spec:** `{EXAMPLE}`\n" in out
    text = out.replace(str(EXAMPLE), "examples/phi3-ultrachat.yaml")
    check_golden("cli-offline-phi3-ultrachat", text)
    assert "- **Target:** azureml, workspace not set\n" in text
    assert "**Offline plan:** the target was not read, so every resource is shown as to-create." in text
    assert summary_counts(text)["to create"] == 10 and summary_counts(text)["to update"] == 0
    assert "| dataset | `HuggingFaceH4/ultrachat_200k` | `main` | _known after apply_ | not pinned |" in text
    assert ("- Endpoint: **$3.67/hour** ($88.15/day, $2,681.29/month) until `finetune destroy`: `demo` on "
            "`Standard_NC24ads_A100_v4` x 1") in text


def test_no_changes_says_so_and_waits_are_listed():
    text = render(plan_case(CASES_DIR / "all-equal"))
    check_structure(text)
    assert "**No changes:** the target matches the spec.\n" in text and "_None._" in text
    text = render(plan_case(CASES_DIR / "deployment-provisioning"))
    check_structure(text)
    assert "**No changes:** apply only waits for what is still in progress.\n" in text
    assert "| `<=` | `deployment.ultrachat-completion/demo` | still Updating: apply waits for it to finish |" in text
    assert summary_counts(text)["to wait for"] == 1
