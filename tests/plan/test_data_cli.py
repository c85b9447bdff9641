"""`finetune data prepare SPEC` and how prepared data feeds offline plans."""

import json
import shutil
from pathlib import Path

import pytest

from finetune.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture
def spec(tmp_path) -> Path:
    shutil.copytree(ROOT / "tests" / "fixtures" / "ultrachat-mini", tmp_path / "data")
    text = (ROOT / "tests" / "azureml" / "phi3-emulated.yaml").read_text()
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("path: ../fixtures/ultrachat-mini", "path: data"))
    return path


def test_prepare_then_cached(spec, capsys):
    code, out, _ = run(capsys, "data", "prepare", str(spec))
    assert code == 0
    assert out.startswith("data prepared: local files")
    assert "train " in out and "15 of 15 rows from train_sft" in out
    code, out, _ = run(capsys, "data", "prepare", str(spec), "--json")
    result = json.loads(out)
    assert result["cache_hit"] is True
    assert set(result["roles"]) == {"train", "test", "sample"}


def test_offline_plan_uses_prepared_hashes(spec, capsys):
    _, out, _ = run(capsys, "plan", str(spec), "--offline", "--json")
    before = {c["address"]: c["after"] for c in json.loads(out)["changes"]}
    assert before["data.train"]["sha256"] == "(known after apply)"
    assert before["job.finetune"]["name"] == "(known after apply)"
    run(capsys, "data", "prepare", str(spec))
    _, out, _ = run(capsys, "plan", str(spec), "--offline", "--json")
    after = {c["address"]: c["after"] for c in json.loads(out)["changes"]}
    assert len(after["data.train"]["sha256"]) == 64
    assert after["data.train"]["version"] == after["data.train"]["sha256"][:12]


def test_bad_rows_are_one_line_errors(spec, capsys):
    bad = spec.parent / "data" / "train_sft.jsonl"
    bad.write_text(bad.read_text() + '{"messages": [{"role": "user", "content": "no answer"}]}\n')
    code, out, err = run(capsys, "data", "prepare", str(spec))
    assert code == 1
    assert "train_sft.jsonl:16" in err and "assistant" in err
    assert "Traceback" not in err
