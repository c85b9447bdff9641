"""`finetune plan --offline` on the example: every notebook entity, provenance, cost, exit codes, formats."""

import json
from pathlib import Path

import pytest

from finetune.cli import main
from finetune.plan.model import Plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "phi3-ultrachat.yaml")
NOTEBOOK_ENTITIES = {
    "compute.gpu-cluster-big", "data.train", "data.test", "job.finetune",
    "model.Phi-3-mini-4k-instruct-ultrachat-200k", "endpoint.ultrachat-completion",
    "deployment.ultrachat-completion/demo", "traffic.ultrachat-completion", "smoke_test.ultrachat-completion",
}


def run(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture(autouse=True)
def no_workspace(monkeypatch, tmp_path):
    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no config.json is found from here


def test_json_plan_has_every_notebook_entity_in_dependency_order(capsys):
    code, out, _ = run(capsys, "plan", EXAMPLE, "--offline", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["format_version"] == "1"
    addresses = [c["address"] for c in plan["changes"]]
    assert NOTEBOOK_ENTITIES <= set(addresses)
    assert all(c["action"] == "create" for c in plan["changes"])
    position = {a: i for i, a in enumerate(addresses)}
    for change in plan["changes"]:
        for dependency in change["depends_on"]:
            assert position[dependency] < position[change["address"]]
    # the endpoint does not wait for training
    assert "job.finetune" not in plan["changes"][position["endpoint.ultrachat-completion"]]["depends_on"]


def test_parameters_show_provenance_and_dropped_keys(capsys):
    _, out, _ = run(capsys, "plan", EXAMPLE, "--offline", "--json")
    plan = json.loads(out)
    params = {p["name"]: p for p in plan["parameters"]}
    assert params["num_train_epochs"]["value"] == 3
    assert params["num_train_epochs"]["source"] == "spec"
    assert "overrides model default 1" in params["num_train_epochs"]["note"]  # model defaults go UNDER the spec
    assert params["precision"]["value"] == "16" and params["precision"]["source"].startswith("model default")
    assert params["lora_r"]["source"] == "component default"
    assert params["number_of_gpu_to_use_finetuning"] == {"name": "number_of_gpu_to_use_finetuning", "value": 1,
                                                          "source": "derived", "note": ""}
    assert set(plan["dropped_parameters"]) == {"learning_rate_min", "learning_rate_max"}


def test_cost_estimate(capsys):
    _, out, _ = run(capsys, "plan", EXAMPLE, "--offline", "--json")
    cost = json.loads(out)["cost"]
    assert cost["training_per_hour"] == pytest.approx(3.673)
    assert cost["endpoint_per_hour"] == pytest.approx(3.673)
    assert cost["endpoint_per_day"] == pytest.approx(3.673 * 24)


def test_text_plan_is_terraform_like(capsys):
    code, out, _ = run(capsys, "plan", EXAMPLE, "--offline")
    assert code == 0
    for address in NOTEBOOK_ENTITIES:
        assert f"+ {address}" in out
    assert "Plan: 10 to create, 0 to update, 0 to replace, 0 to destroy, 0 unchanged." in out
    assert "$88.15/day" in out
    assert "\x1b[" not in out  # not a TTY: no colour codes


def test_detailed_exitcode_and_out_file(capsys, tmp_path):
    out_file = tmp_path / "plan.json"
    code, _, _ = run(capsys, "plan", EXAMPLE, "--offline", "--detailed-exitcode", "--out", str(out_file))
    assert code == 2
    plan = Plan.from_dict(json.loads(out_file.read_text()))
    assert plan.has_changes and plan.observed_serial == "offline"
    assert Plan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()


def test_markdown_format(capsys):
    code, out, _ = run(capsys, "plan", EXAMPLE, "--offline", "--format", "markdown")
    assert code == 0
    assert out.startswith("### finetune plan: `phi3-ultrachat`")
    assert "| `+` | `job.finetune` |" in out
    assert "~~`learning_rate_min`~~" in out


def test_workspace_from_environment_gives_stable_endpoint_name(capsys, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub-1")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "rg")
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", "ws")
    _, out, _ = run(capsys, "plan", EXAMPLE, "--offline", "--json")
    first = json.loads(out)
    endpoint = next(c for c in first["changes"] if c["kind"] == "endpoint")["after"]["name"]
    assert endpoint.startswith("ultrachat-completion-") and "known after" not in endpoint
    _, again, _ = run(capsys, "plan", EXAMPLE, "--offline", "--json")
    assert next(c for c in json.loads(again)["changes"] if c["kind"] == "endpoint")["after"]["name"] == endpoint
    assert "ws (resource group rg, subscription sub-1)" == first["target"]["workspace"]


def test_config_json_is_found_like_from_config(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"subscription_id": "s", "resource_group": "r",
                                                      "workspace_name": "w"}))
    _, out, _ = run(capsys, "plan", EXAMPLE, "--offline", "--json")
    assert json.loads(out)["target"]["workspace"] == "w (resource group r, subscription s)"


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_validates_and_plans_offline(example, capsys):
    assert run(capsys, "validate", str(example))[0] == 0
    code, out, _ = run(capsys, "plan", str(example), "--offline", "--json")
    assert code == 0 and json.loads(out)["summary"]["create"] >= 7
