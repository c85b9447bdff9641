"""`--json` on the local target: every command, one spec and a folder, prints exactly one JSON document on stdout
and no escape codes anywhere (the azureml counterpart is tests/azureml/test_output.py)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from finetune.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART_DATA = ROOT / "examples" / "data" / "quickstart"

pytest.importorskip("torch")

SPEC = """\
apiVersion: finetune/v1
kind: FineTune
metadata:
  name: {name}
model:
  tiny: {{layers: 1, hidden_size: 64, heads: 2, vocab_size: 600}}
data:
  source:
    path: data
  splits: {{train: train, test: test, sample: test}}
finetune:
  parameters:
    num_train_epochs: 1
    per_device_train_batch_size: 8
    learning_rate: 1e-3
    max_seq_length: 128
registered_model:
  name: {name}-model
endpoint:
  name: {name}
  deployments:
    - name: local
smoke_test:
  parameters: {{max_new_tokens: 8, do_sample: false}}
"""

# In lifecycle order, repeats included: a second destroy --all has nothing left and must still print one document.
COMMANDS = [
    ["validate"], ["plan"], ["data", "prepare"], ["lock"], ["apply", "--auto-approve"], ["plan"], ["status"],
    ["invoke"], ["runs"], ["export", "--to", "azure-cli", "{out}"], ["validate", "{dir}"], ["plan", "{dir}"],
    ["status", "{dir}"], ["destroy", "--auto-approve"], ["destroy", "--all", "--auto-approve"],
    ["destroy", "--all", "--auto-approve"],
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture
def folder(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train", "test"):
        rows = (QUICKSTART_DATA / f"{name}.jsonl").read_text().splitlines()
        (data / f"{name}.jsonl").write_text("\n".join(rows[:32]) + "\n")
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(SPEC.format(name="local-json")))
    yield tmp_path
    try:
        main(["destroy", str(tmp_path / "spec.yaml"), "--all", "--auto-approve"])
    except SystemExit:
        pass
    shutil.rmtree(tmp_path / ".finetune", ignore_errors=True)


def test_every_command_with_json_prints_one_document_and_no_escape_codes(folder, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    spec = folder / "spec.yaml"
    for command in COMMANDS:
        args = [a.format(out=folder / "exported", dir=folder) for a in command]
        on_folder = str(folder) in args
        where = 2 if command[0] == "data" else 1
        argv = [*args, "--json"] if on_folder else [*args[:where], str(spec), *args[where:], "--json"]
        code, out, err = run(capsys, *argv)
        # export is for azureml specs: a local spec is refused, and the refusal is JSON too
        assert code == (1 if command[0] == "export" else 0), (command, code, err)
        document = json.loads(out)  # exactly one document: trailing text or a second document fails here
        assert "\x1b[" not in out + err, command
        if command[0] == "export":
            assert "azureml" in json.dumps(document), document
