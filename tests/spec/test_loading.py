"""Loading: templating from vars / --var / env, normalization, the example and the notebook's originals."""

import json
import textwrap
from pathlib import Path

import pytest

from finetune.errors import SpecError
from finetune.graph import ResolvedFacts, build_graph
from finetune.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "phi3-ultrachat.yaml"


def test_example_is_valid_and_mirrors_the_notebook():
    loaded = load_spec(EXAMPLE)
    spec = loaded.spec
    assert spec.model.registry == "azureml" and spec.model.name == "Phi-3-mini-4k-instruct"
    assert (spec.data.splits.train, spec.data.splits.test, spec.data.splits.sample) == ("train_sft", "test_sft",
                                                                                         "test_gen")
    assert spec.data.split_percentage == 5 and spec.data.sampling.method == "head"
    params = spec.finetune.parameters
    assert params["num_train_epochs"] == 3 and params["lr_scheduler_type"] == "cosine"
    assert spec.endpoint.deployments[0].liveness_probe.initial_delay == 600
    assert spec.endpoint.deployments[0].request_timeout_ms == 90000
    assert spec.traffic == {"demo": 100}
    assert spec.smoke_test.parameters == {"temperature": 0.6, "top_p": 0.9, "do_sample": True, "max_new_tokens": 200}
    assert EXAMPLE.read_text().startswith("# yaml-language-server: $schema=")


@pytest.mark.parametrize("sku, message", [
    ("Standard_ND40rs_v2", "not in Phi-3-mini-4k-instruct's fine-tune allow list"),
    ("Standard_NC24rs_v3", "retired on 2025-09-30"),
])
def test_notebook_training_skus_are_caught(tmp_path, sku, message):
    spec = tmp_path / "s.yaml"
    spec.write_text(EXAMPLE.read_text().replace("sku: Standard_NC24ads_A100_v4   # 1 x A100 80 GB", f"sku: {sku}"))
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert message in str(info.value)
    assert "(use " in str(info.value) and "_A100_v4" in str(info.value)  # a fix is suggested


@pytest.mark.parametrize("sku, message", [
    ("STANDARD_NC4AS_T4_V3", "inference allow list"),
    ("Standard_NC6s_v3", "retired"),
])
def test_notebook_deployment_skus_are_caught(tmp_path, sku, message):
    text = EXAMPLE.read_text().replace("      sku: Standard_NC24ads_A100_v4", f"      sku: {sku}")
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert message in str(info.value)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(body))
    return path


LOCAL = """\
    apiVersion: finetune/v1
    kind: FineTune
    metadata:
      name: "{{ vars.name }}"
    vars:
      name: from-spec
      epochs: 2
    model:
      tiny: {}
    data:
      source:
        path: .
      splits:
        train: train
    finetune:
      parameters:
        num_train_epochs: "{{ vars.epochs }}"
        apply_lora: true
        precision: 16
        learning_rate: 5e-6
    registered_model:
      name: "{{ env.FINETUNE_TEST_MODEL_NAME }}"
    """


def test_variables_precedence_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_TEST_MODEL_NAME", "env-model")
    path = write(tmp_path, LOCAL)
    assert load_spec(path).spec.metadata.name == "from-spec"
    loaded = load_spec(path, variables={"name": "from-cli"})
    assert loaded.spec.metadata.name == "from-cli"
    assert loaded.spec.registered_model.name == "env-model"


def test_parameters_are_normalized_to_component_forms(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_TEST_MODEL_NAME", "m")
    loaded = load_spec(write(tmp_path, LOCAL))
    graph = build_graph(loaded.spec, ResolvedFacts())
    effective = {name: p.value for name, p in graph.parameters.parameters.items()}
    assert effective["apply_lora"] == "true"  # YAML true -> the component's string boolean
    assert effective["precision"] == "16"  # int -> string enum
    assert effective["num_train_epochs"] == 2  # templated "2" -> integer input
    assert effective["learning_rate"] == 5e-6  # YAML 1.1 reads 5e-6 as a string


def test_digest_changes_with_content(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_TEST_MODEL_NAME", "m")
    path = write(tmp_path, LOCAL)
    first = load_spec(path).digest
    assert load_spec(path).digest == first
    assert load_spec(path, variables={"epochs": 3}).digest != first


def test_var_file_and_var_via_cli(tmp_path, monkeypatch, capsys):
    from finetune.cli import main

    monkeypatch.setenv("FINETUNE_TEST_MODEL_NAME", "m")
    path = write(tmp_path, LOCAL)
    # validate reads the data too: the folder needs its train split
    (tmp_path / "train.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                                  {"role": "assistant", "content": "hello"}]}) + "\n")
    var_file = tmp_path / "vars.yaml"
    var_file.write_text("name: from-file\n")
    with pytest.raises(SystemExit) as info:
        main(["validate", str(path), "--var-file", str(var_file), "--json"])
    assert info.value.code == 0
    assert json.loads(capsys.readouterr().out)["spec"] == "from-file"
    with pytest.raises(SystemExit) as info:
        main(["validate", str(path), "--var", "broken"])
    assert info.value.code == 1
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_stable_endpoint_suffix(tmp_path, monkeypatch):
    from finetune.graph import resolved_endpoint_name

    spec = load_spec(EXAMPLE).spec
    one = resolved_endpoint_name(spec, ResolvedFacts(workspace_identity="sub/rg/ws"))
    assert one == resolved_endpoint_name(spec, ResolvedFacts(workspace_identity="sub/rg/ws"))
    assert one != resolved_endpoint_name(spec, ResolvedFacts(workspace_identity="sub/rg/other"))
    assert one.startswith("ultrachat-completion-") and len(one) <= 32


def test_numeric_versions_are_strings(tmp_path):
    text = EXAMPLE.read_text().replace("  label: latest ", "  version: 15 ")
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    loaded = load_spec(spec)
    assert loaded.spec.model.version == "15"
