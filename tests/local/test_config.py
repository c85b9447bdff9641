"""LocalTrainConfig: parameter coercion, validation, JSON round trip, training hash (no heavy imports)."""

import sys

import pytest

from finetune.backends.local.config import ConfigError, LocalTrainConfig, ModelSource, effective_parameters


def _config(**kw):
    base = {"model": {"tiny": {"layers": 2}}, "train_file": "/d/train.jsonl", "output_dir": "/o"}
    return LocalTrainConfig.from_dict({**base, **kw})


def test_parameters_are_coerced_from_component_strings():
    p = effective_parameters({"num_train_epochs": "3", "learning_rate": "2e-4", "apply_lora": "True", "lora_r": 16.0})
    assert p["num_train_epochs"] == 3 and p["learning_rate"] == 2e-4 and p["apply_lora"] == "true"
    assert p["lora_r"] == 16 and p["precision"] == "auto" and p["seed"] == 42


@pytest.mark.parametrize("bad", [{"learning_rat": 1e-3}, {"precision": "8"}, {"lora_r": "many"}])
def test_bad_parameters_are_errors(bad):
    with pytest.raises(ConfigError):
        effective_parameters(bad)


def test_model_source_needs_exactly_one_kind():
    with pytest.raises(ConfigError):
        ModelSource()
    with pytest.raises(ConfigError):
        ModelSource(hf="org/model", path="/m")
    assert ModelSource(hf="org/m", revision="3").describe() == "hf:org/m@3"


def test_quantization_is_4bit_for_hf_or_path_only():
    assert ModelSource(path="/m", quantization="4bit").describe() == "path:/m (4bit)"
    for bad in ({"path": "/m", "quantization": "8bit"}, {"tiny": {}, "quantization": "4bit"}):
        with pytest.raises(ConfigError):
            ModelSource(**bad)
    # the base's loading is part of what decides the weights
    assert _config(model={"path": "/m"}).training_hash() != _config(
        model={"path": "/m", "quantization": "4bit"}).training_hash()


@pytest.mark.parametrize("requested, device, bf16, expected", [
    ("auto", "cpu", True, ({}, "32")),
    ("16", "cpu", True, ({}, "32")),  # half precision on CPU is slower: never
    ("32", "cuda", True, ({}, "32")),
    ("auto", "cuda", True, ({"bf16": True}, "bf16")),
    ("auto", "cuda", False, ({"fp16": True}, "fp16")),  # e.g. a T4 or V100
    ("16", "cuda", False, ({"fp16": True}, "fp16")),
])
def test_precision_follows_the_device(requested, device, bf16, expected, monkeypatch):
    torch = pytest.importorskip("torch")
    from finetune.backends.local.training import precision_flags

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)  # the GPU's capability, not ours
    assert precision_flags(requested, device) == expected


def test_json_round_trip(tmp_path):
    config = _config(parameters={"lora_r": 4}, mlflow={"tracking_uri": "sqlite:////s/m.db", "tags": {"a": "b"}})
    config.save(tmp_path / "job.json")
    again = LocalTrainConfig.load(tmp_path / "job.json")
    assert again == config
    assert again.model.tiny.layers == 2 and again.mlflow.tags == {"a": "b"}


def test_training_hash_ignores_where_and_how_it_is_tracked():
    a = _config()
    assert a.training_hash() == _config(output_dir="/elsewhere", mlflow={"tracking_uri": "x"},
                                        checkpoint_every_steps=5).training_hash()
    assert a.training_hash() != _config(parameters={"seed": 7}).training_hash()
    assert a.training_hash() != _config(train_file="/d/other.jsonl").training_hash()


def test_modules_import_without_heavy_packages():
    import importlib

    for name in ("config", "trainjob", "server", "registry", "tracking", "chatdata", "tiny"):
        importlib.import_module(f"finetune.backends.local.{name}")
    importlib.import_module("finetune.backends.lossplot")
    heavy = {"torch", "transformers", "peft", "mlflow", "matplotlib"} & set(sys.modules)
    if heavy:  # another test in this process may have imported them; check in a clean interpreter instead
        import subprocess

        code = ("import sys, finetune.backends.local.trainjob, finetune.backends.local.server, "
                "finetune.backends.local.registry, finetune.backends.lossplot;"
                "print(sorted({'torch','transformers','peft','mlflow','matplotlib'} & set(sys.modules)))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]"
