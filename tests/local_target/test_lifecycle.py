"""The local target end to end through the CLI: apply, invoke, status, re-apply, a killed server, destroy."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import textwrap
import time
from pathlib import Path

import pytest

from finetune.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART_DATA = ROOT / "examples" / "data" / "quickstart"

pytest.importorskip("torch")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture
def spec(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train", "test"):
        rows = (QUICKSTART_DATA / f"{name}.jsonl").read_text().splitlines()
        (data / f"{name}.jsonl").write_text("\n".join(rows[:32]) + "\n")
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: finetune/v1
        kind: FineTune
        metadata:
          name: local-test
        model:
          tiny: {layers: 1, hidden_size: 64, heads: 2, vocab_size: 600}
        data:
          source:
            path: data
          splits: {train: train, test: test, sample: test}
        finetune:
          parameters:
            num_train_epochs: 1
            per_device_train_batch_size: 8
            learning_rate: 1e-3
            max_seq_length: 128
        registered_model:
          name: local-test-model
        endpoint:
          name: local-test
          deployments:
            - name: local
        smoke_test:
          parameters: {max_new_tokens: 8, do_sample: false}
        """))
    yield path
    run_quietly("destroy", str(path), "--auto-approve")


def run_quietly(*argv: str) -> None:
    try:
        main(list(argv))
    except SystemExit:
        pass


def test_local_lifecycle(spec, capsys):
    begun = time.monotonic()
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    wall = time.monotonic() - begun
    assert code == 0, err
    # the closing line is the whole command's wall clock, planning and data preparation included
    reported = float(re.search(r"Apply complete in ([\d.]+) s\.", out).group(1))
    assert wall - 1.0 <= reported <= wall + 0.05
    # before its first step the job says what it is doing; then step/total (percent), loss and an estimate
    job = [line.split(" job.finetune ", 1)[1] for line in err.splitlines() if " job.finetune " in line]
    assert "importing torch and transformers" in job
    assert any(re.fullmatch(r"Completed, step (\d+)/\1 \(100%\) loss \d+\.\d\d", line) for line in job), job
    # the smoke test: the sample row's question and expected answer, and the model's answer
    sample = json.loads((spec.parent / "data" / "test.jsonl").read_text().splitlines()[0])["messages"]
    assert f"  question: {sample[-2]['content']}\n  expected: {sample[-1]['content']}\n  answer:   " in out
    # the run is set against the plan's estimate (from this machine's calibration), so the estimate can be checked
    took = next(line for line in out.splitlines() if line.startswith("Training took "))
    assert "; estimated " in took and took.endswith(("within the estimate", "under the estimate", "over the estimate"))
    assert "tokens/s (estimated " in out
    state = spec.parent / ".finetune"
    assert len(list((state / "cache" / "throughput").glob("*.json"))) == 1
    assert (state / "mlflow.db").exists()
    jobs = list((state / "jobs").iterdir())
    assert len(jobs) == 1

    code, out, _ = run(capsys, "invoke", str(spec), "-m", "How often should I water a fern?", "--json")
    assert code == 0 and isinstance(json.loads(out)["answer"], str)
    # greedy decoding at --temperature 0: the same answer every call, as long as --max-new-tokens allows
    greedy = ["invoke", str(spec), "-m", "How often should I water a fern?", "--temperature", "0", "--json"]
    answers = [json.loads(run(capsys, *greedy, "--max-new-tokens", str(n))[1]) for n in (6, 6, 2)]
    assert answers[0]["parameters"] == {"do_sample": False, "max_new_tokens": 6}
    assert answers[0]["answer"] == answers[1]["answer"]
    assert len(answers[2]["answer"]) <= len(answers[0]["answer"])

    code, out, _ = run(capsys, "status", str(spec))
    assert "Last smoke test on deployment local" in out and "  answer:   " in out
    code, out, _ = run(capsys, "status", str(spec), "--json")
    report = json.loads(out)
    assert code == 0 and report["smoke_test"]["ok"] and report["smoke_test"]["expected"]
    job = next(r for r in report["resources"] if r["address"] == "job.finetune")
    assert job["status"] == "Completed"
    assert Path(report["loss_png"]).exists() and report["loss_plot"]
    model = next(r for r in report["resources"] if r["address"].startswith("model."))
    assert model["properties"]["version"] == "1"

    # an unchanged spec does not retrain
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 0, err
    assert "Nothing to do" in out and "Training took" not in out
    assert len(list((state / "jobs").iterdir())) == 1

    # a killed server is noticed by status and restarted by apply
    server_state = next((state / "servers").glob("*.json"))
    pid = json.loads(server_state.read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    code, out, _ = run(capsys, "status", str(spec))
    assert code == 0
    assert "the local server died" in out
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 0, err
    assert "deployment.local-test/local" in err
    assert len(list((state / "jobs").iterdir())) == 1  # restarting the server does not retrain

    code, _, err = run(capsys, "destroy", str(spec), "--auto-approve")
    assert code == 0, err
    assert not list((state / "servers").glob("*.json"))
    code, out, _ = run(capsys, "plan", str(spec), "--json")
    changes = {c["address"]: c["action"] for c in json.loads(out)["changes"]}
    assert changes["endpoint.local-test"] == "create" and changes["job.finetune"] == "noop"

    # --all also removes the registered model versions and the prepared data; the next plan trains nothing new
    # (the completed job is still adopted) but registers the model again
    code, _, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve")
    assert code == 0, err
    assert not list((state / "data-cache" / "prepared").glob("*/train.jsonl"))
    code, out, _ = run(capsys, "plan", str(spec), "--json")
    changes = {c["address"]: c["action"] for c in json.loads(out)["changes"]}
    assert changes["model.local-test-model"] == "create" and changes["job.finetune"] == "noop"


def test_local_rejects_emulate(spec, capsys):
    code, _, err = run(capsys, "plan", str(spec), "--emulate")
    assert code == 1 and "--emulate rehearses the azureml target" in err
    shutil.rmtree(spec.parent / ".finetune", ignore_errors=True)
