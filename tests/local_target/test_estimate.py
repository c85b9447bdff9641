"""The local plan tells the truth: only the fields the local target uses, every effective training parameter with its
source (library defaults included), and a time estimate from this machine's measured throughput, calibrated once per
machine and model and cached under the state folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from finetune.backends.local.config import DEFAULT_PARAMETERS, effective_parameters
from finetune.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "local-quickstart.yaml"

pytest.importorskip("torch")


def run(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture
def quickstart(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("FINETUNE_CPU_THREADS", raising=False)
    shutil.copytree(ROOT / "examples" / "data" / "quickstart", tmp_path / "data" / "quickstart")
    shutil.copy(EXAMPLE, tmp_path / "local-quickstart.yaml")
    return tmp_path / "local-quickstart.yaml"


def calibrations(spec: Path) -> list[Path]:
    return sorted((spec.parent / ".finetune" / "cache" / "throughput").glob("*.json"))


def test_the_example_plans_a_measured_time_range_calibrated_once_per_machine_and_model(quickstart, capsys,
                                                                                      monkeypatch):
    code, out, _ = run(capsys, "plan", quickstart, "--offline", "--json")
    assert code == 0 and json.loads(out)["cost"]["training_hours"] is None  # offline: nothing is measured
    assert any("calibration run" in n for n in json.loads(out)["cost"]["notes"])

    code, _, err = run(capsys, "plan", quickstart)
    assert code == 0, err
    assert "measuring this machine's training speed" in err
    [cache] = calibrations(quickstart)
    written = cache.stat().st_mtime_ns
    code, out, _ = run(capsys, "plan", quickstart, "--json")
    cost = json.loads(out)["cost"]
    hours, usd = cost["training_hours"], cost["training_usd"]
    assert 0 < hours["low"] < hours["high"] and usd == {"low": 0.0, "high": 0.0}
    rate = cost["training"]["tokens_per_second"]
    assert 0 < rate["low"] <= rate["high"]
    assert calibrations(quickstart) == [cache] and cache.stat().st_mtime_ns == written
    measured = json.loads(cache.read_text())
    assert measured["tokens_per_second"]["low"] == rate["low"] and measured["steps"] >= 2
    assert measured["model"].startswith("tiny:") and measured["machine"]["cores"]

    # reused: the same machine and model plan again (and offline) without measuring
    code, out, err = run(capsys, "plan", quickstart)
    assert code == 0 and "measuring" not in err
    low, high = round(hours["low"] * 3600), round(hours["high"] * 3600)
    assert f"time {low}-{high} s" in out and "training: this machine (cpu)" in out and "no cloud cost" in out
    assert f"{rate['low']:,.0f}-{rate['high']:,.0f} tokens/s" in out
    code, out, _ = run(capsys, "plan", quickstart, "--offline", "--json")
    assert json.loads(out)["cost"]["training_hours"] == hours
    # a parameter that does not change the speed reuses it too; training more epochs takes longer
    epochs = yaml.safe_load(quickstart.read_text())["finetune"]["parameters"]["num_train_epochs"]
    quickstart.write_text(quickstart.read_text().replace(f"num_train_epochs: {epochs}",
                                                         f"num_train_epochs: {epochs * 2}"))
    code, out, err = run(capsys, "plan", quickstart, "--json")
    assert calibrations(quickstart) == [cache] and cache.stat().st_mtime_ns == written
    assert json.loads(out)["cost"]["training_hours"]["high"] > hours["high"]

    # another model, or another machine setting, is measured again
    quickstart.write_text(quickstart.read_text().replace("layers: 2", "layers: 1"))
    code, _, err = run(capsys, "plan", quickstart)
    assert code == 0 and "measuring" in err and len(calibrations(quickstart)) == 2
    monkeypatch.setenv("FINETUNE_CPU_THREADS", "1")
    code, _, err = run(capsys, "plan", quickstart)
    assert code == 0 and "measuring" in err and len(calibrations(quickstart)) == 3


def test_local_plan_shows_only_what_the_local_target_uses(quickstart, capsys):
    quickstart.write_text(quickstart.read_text().replace("    seed: 7\n", "    seed: 7\n    apply_deepspeed: true\n"))
    code, out, _ = run(capsys, "plan", quickstart, "--offline", "--json")
    plan = json.loads(out)
    assert code == 0
    fields = {c["address"].split(".")[0]: set(c["after"] or {}) for c in plan["changes"]}
    assert "auth_mode" not in fields["endpoint"]
    assert not {"liveness_probe", "request_timeout_ms", "instance_count",
                "max_concurrent_requests_per_instance"} & fields["deployment"]
    assert not {"component", "compute", "num_nodes", "display_name", "force_rerun"} & fields["job"]
    code, text, _ = run(capsys, "plan", quickstart, "--offline")
    for word in ("auth_mode", "liveness_probe", "request_timeout_ms", "local-lora"):
        assert word not in text

    params = {p["name"]: p for p in plan["parameters"]}
    # the example's own values (it is tuned over time), as the spec holds them
    spec_values = {name: ("false" if value is False else "true" if value is True else value) for name, value in
                   yaml.safe_load(quickstart.read_text())["finetune"]["parameters"].items()
                   if name != "apply_deepspeed"}
    trainer = effective_parameters(spec_values)  # what the local trainer itself computes from the same values
    for name in DEFAULT_PARAMETERS:  # every parameter of the trainer, its value as the trainer has it
        assert params[name]["value"] == trainer[name], name
        assert params[name]["source"] == ("spec" if name in spec_values else "target default"), name
    assert params["eval_strategy"] == {"name": "eval_strategy", "value": "epoch", "source": "local trainer",
                                       "note": ""}
    assert params["lora_r"]["note"] == "not used: apply_lora is false"
    assert plan["dropped_parameters"] == {"apply_deepspeed": "no effect on the local target"}
    # library defaults are read by the calibration child (not by the CLI), then listed from the cache
    assert params["(TrainingArguments, LoraConfig)"]["value"] == "(known after calibration)"
    run(capsys, "plan", quickstart, "--json")
    code, out, _ = run(capsys, "plan", quickstart, "--offline", "--json")
    params = {p["name"]: p for p in json.loads(out)["parameters"]}
    from transformers import TrainingArguments

    defaults = TrainingArguments(output_dir=str(quickstart.parent / "x"), use_cpu=True, report_to="none")
    for name in ("optim", "adam_beta1", "adam_epsilon", "max_grad_norm", "gradient_checkpointing"):
        assert params[name]["value"] == getattr(getattr(defaults, name), "value", getattr(defaults, name)), name
        assert params[name]["source"].startswith("library default (transformers ")
