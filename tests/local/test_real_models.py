"""Real base models on the local target, offline: small models of five real architectures, from a saved folder and
from a Hugging Face cache layout, planned (LoRA modules per architecture, early refusals), fine-tuned, registered,
served and invoked through the CLI."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest
from conftest import QUICKSTART, heavy
from realmodels import ARCHS, hub_cache_model, save_model

from finetune.cli import main

# What each architecture's plan must show (the modules exist in the model: test_lora_targets_exist_in_each_model).
EXPECTED_TARGETS = {
    "llama": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    "mistral": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    "qwen2": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    "phi3": "qkv_proj,o_proj,gate_up_proj,down_proj",
    "gpt2": "c_attn,c_proj,c_fc",
}


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    """Every architecture saved once (save_pretrained of a tiny config and a trained tokenizer)."""
    heavy()
    root = tmp_path_factory.mktemp("models")
    return {arch: save_model(arch, root / arch) for arch in ARCHS}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def write_spec(folder: Path, model: str, *, epochs: int = 1, extra_params: str = "", rows: int = 24) -> Path:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        lines = (QUICKSTART / f"{name}.jsonl").read_text().splitlines()
        (data / f"{name}.jsonl").write_text("\n".join(lines[:rows]) + "\n")
    spec = folder / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        apiVersion: finetune/v1
        kind: FineTune
        metadata:
          name: real-model
        model:
          {model}
        data:
          source:
            path: data
          splits: {{train: train, test: test, sample: test}}
        finetune:
          parameters:
            num_train_epochs: {epochs}
            per_device_train_batch_size: 8
            learning_rate: 5e-3
            lora_r: 8
            lora_alpha: 16
            max_seq_length: 128{extra}
        registered_model:
          name: real-model
        endpoint:
          name: real-model
          deployments:
            - name: local
        smoke_test:
          parameters: {{max_new_tokens: 8, do_sample: false}}
        evaluation: {{max_rows: 4, max_new_tokens: 8}}
        """).format(model=model, epochs=epochs, extra=extra_params))
    return spec


def error_lines(err: str) -> list[str]:
    """stderr's error lines (progress lines like `preparing data` are not errors)."""
    return [line for line in err.splitlines() if "error:" in line]


def effective(plan: dict) -> dict[str, dict]:
    return {p["name"]: p for p in plan["parameters"]}


def job(plan: dict) -> dict:
    return next(c for c in plan["changes"] if c["address"] == "job.finetune")


# ---- plan: architecture, LoRA modules, early refusals (no training) ----------------------------------------------

@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_plan_shows_lora_targets_of_the_architecture(arch, saved_models, tmp_path, capsys):
    spec = write_spec(tmp_path, f"path: {saved_models[arch]}")
    code, out, err = run(capsys, "plan", str(spec), "--json")
    assert code == 2 or code == 0, err
    plan = json.loads(out)
    targets = effective(plan)["lora_target_modules"]
    assert targets["value"] == EXPECTED_TARGETS[arch] and targets["source"] == "derived"
    code, text, _ = run(capsys, "plan", str(spec))
    assert EXPECTED_TARGETS[arch] in text
    warnings = [d["message"] for d in plan["diagnostics"]]
    assert any("no chat template" in w for w in warnings) == (ARCHS[arch][5] is None)


def test_lora_targets_exist_in_each_model(saved_models):
    """The table's names are real modules of transformers' implementation (peft would fail on a missing one)."""
    import subprocess
    import sys

    script = textwrap.dedent("""
        import json, sys
        from transformers import AutoModelForCausalLM
        from finetune.backends.local.basemodel import locate_path
        from pathlib import Path
        out = {}
        for folder in sys.argv[1:]:
            base = locate_path(Path(folder))
            names = {n.rsplit('.', 1)[-1] for n, _ in AutoModelForCausalLM.from_pretrained(folder).named_modules()}
            out[base.model_type] = [t for t in base.lora_targets().split(',') if t not in names]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script, *map(str, saved_models.values())], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 0, proc.stderr[-2000:]
    missing = json.loads(proc.stdout.splitlines()[-1])
    assert missing == {arch: [] for arch in ARCHS}


def test_plan_pins_the_cached_commit_of_a_hub_model(saved_models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    _, commit = hub_cache_model("mistral", tmp_path / "hf", "tiny-org/mistral-chat", source=saved_models["mistral"])
    spec = write_spec(tmp_path / "spec", "hf: tiny-org/mistral-chat")
    code, out, err = run(capsys, "plan", str(spec), "--json")
    assert code in (0, 2), err
    plan = json.loads(out)
    assert job(plan)["after"]["model"] == f"hf:tiny-org/mistral-chat@{commit}"
    assert effective(plan)["lora_target_modules"]["value"] == EXPECTED_TARGETS["mistral"]

    # the cache moving to a new commit is a new job (other weights), found without network
    repo = tmp_path / "hf" / "hub" / "models--tiny-org--mistral-chat"
    newer = "f" * 40
    (repo / "snapshots" / commit).rename(repo / "snapshots" / newer)
    (repo / "refs" / "main").write_text(newer)
    code, out, err = run(capsys, "plan", str(spec), "--json")
    assert code in (0, 2), err
    assert job(json.loads(out))["after"]["model"] == f"hf:tiny-org/mistral-chat@{newer}"


def test_uncached_hub_model_fails_at_plan_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    spec = write_spec(tmp_path, "hf: some-org/not-downloaded")
    started = time.monotonic()
    code, out, err = run(capsys, "plan", str(spec))
    assert time.monotonic() - started < 10  # no network wait, no training process
    assert code == 1 and out == ""
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert f"{spec}:6:" in lines[0] and "model.hf: some-org/not-downloaded is not in the Hugging Face cache" in lines[0]
    assert "HF_HUB_OFFLINE" in lines[0] and "hf download some-org/not-downloaded" in lines[0]
    # apply refuses the same way, before any job folder exists
    code, _, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 1 and "not in the Hugging Face cache" in err
    assert not (tmp_path / ".finetune" / "jobs").exists()


def test_uncached_hub_model_with_unreachable_hub_fails_fast(tmp_path, capsys, monkeypatch):
    """Online mode, but the hub cannot be reached: a 1-second connect decides, not a minute of retries."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    spec = write_spec(tmp_path, "hf: some-org/not-downloaded")
    code, _, err = run(capsys, "plan", str(spec))
    assert code == 1 and len(error_lines(err)) == 1
    assert "cannot be reached" in err and "hf download" in err


def test_qlora_refused_with_the_reason_on_this_machine(saved_models, tmp_path, capsys):
    import importlib.util

    spec = write_spec(tmp_path, f"path: {saved_models['llama']}\n  quantization: 4bit")
    code, out, err = run(capsys, "plan", str(spec), "--json")
    plan = json.loads(out)
    assert effective(plan)["quantization"]["value"] == "4bit (QLoRA)"
    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here: the refusal depends on CUDA")
    assert code == 3 and plan["blocked"]
    assert job(plan)["blocked_by"] == ["error: job.finetune: 4-bit QLoRA cannot run on this machine: bitsandbytes "
                                       "is not installed (pip install bitsandbytes) (remove `model.quantization` "
                                       "to train LoRA on the full-precision base)"]


def test_qlora_needs_lora(saved_models, tmp_path, capsys):
    spec = write_spec(tmp_path, f"path: {saved_models['llama']}\n  quantization: 4bit",
                      extra_params="\n    apply_lora: false")
    code, _, err = run(capsys, "validate", str(spec))
    assert code == 1 and "model.quantization: a 4-bit base cannot be fully fine-tuned" in err


# ---- fine-tune, register, serve, invoke ----------------------------------------------------------------------------

def lifecycle(spec: Path, capsys) -> dict:
    try:
        code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
        assert code == 0, err
        assert "Smoke test:" in out and "  answer:   " in out
        code, out, err = run(capsys, "invoke", str(spec), "-m", "How often should I water a fern?", "--json")
        assert code == 0, err
        answer = json.loads(out)["answer"]
        assert isinstance(answer, str)
        code, out, err = run(capsys, "status", str(spec), "--json")
        assert code == 0, err
        report = json.loads(out)
        job_dir = next((spec.parent / ".finetune" / "jobs").iterdir())
        return {"report": report, "job_dir": job_dir, "status": json.loads((job_dir / "status.json").read_text())}
    finally:
        run(capsys, "destroy", str(spec), "--auto-approve")


def trained_weights_differ(base: Path, trained: Path) -> bool:
    """The merged model's weights are not the base's (LoRA was trained and merged), read without torch."""
    from safetensors import safe_open

    with safe_open(str(base / "model.safetensors"), "numpy") as a, \
            safe_open(str(trained / "model.safetensors"), "numpy") as b:
        assert not any("lora" in k for k in b.keys())  # merged: serving needs no peft
        return any((a.get_tensor(k) != b.get_tensor(k)).any() for k in a.keys() if k in set(b.keys()))


@pytest.mark.parametrize("arch", ["qwen2", "phi3", "gpt2"])
def test_folder_model_fine_tunes_serves_and_answers(arch, saved_models, tmp_path, capsys):
    spec = write_spec(tmp_path, f"path: {saved_models[arch]}")
    result = lifecycle(spec, capsys)
    status = result["status"]
    assert status["state"] == "Completed" and status["device"] == "cpu" and status["precision"] == "32"
    model_dir = Path(status["model_dir"])
    assert json.loads((model_dir / "config.json").read_text())["model_type"] == arch
    assert trained_weights_differ(saved_models[arch], model_dir)
    log = (result["job_dir"] / "train.log").read_text()
    assert ("formatting chats as ChatML" in log) == (arch == "gpt2")


@pytest.mark.parametrize("arch", ["llama", "mistral"])
def test_hub_cache_model_fine_tunes_offline_serves_and_answers(arch, saved_models, tmp_path, capsys, monkeypatch):
    hf_home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    snapshot, commit = hub_cache_model(arch, hf_home, f"tiny-org/{arch}-chat", source=saved_models[arch])
    spec = write_spec(tmp_path / "spec", f"hf: tiny-org/{arch}-chat")
    result = lifecycle(spec, capsys)
    config = json.loads((result["job_dir"] / "job.json").read_text())
    assert config["model"]["hf"] == f"tiny-org/{arch}-chat" and config["model"]["revision"] == commit
    assert config["parameters"]["lora_target_modules"] == EXPECTED_TARGETS[arch]
    assert trained_weights_differ(snapshot, Path(result["status"]["model_dir"]))
    job_row = next(r for r in result["report"]["resources"] if r["address"] == "job.finetune")
    assert job_row["status"] == "Completed"


def test_status_of_a_hub_model_not_in_the_cache_shows_what_exists(tmp_path, capsys, monkeypatch):
    """A model evicted from the cache (or never downloaded) must not stop `status` from saying what exists."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    spec = write_spec(tmp_path, "hf: some-org/not-downloaded")
    code, out, err = run(capsys, "status", str(spec), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["resources"] and not any(r.get("exists") for r in report["resources"])
    code, out, err = run(capsys, "status", str(spec))
    assert code == 0, err
    assert "not in the Hugging Face cache" in err and "showing what exists without it" in err
