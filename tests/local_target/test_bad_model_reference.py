"""A local model folder that cannot be trained from fails plan and apply before anything is prepared or created
(it used to surface a minute into apply, after the local endpoint was created beside the failing training)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from finetune.cli import main

CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    return info.value.code, capsys.readouterr().err


@pytest.fixture
def spec(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    for split in ("train", "test"):
        (tmp_path / "data" / f"{split}.jsonl").write_text(json.dumps(CHAT) + "\n")
    model = tmp_path / "base-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')  # no weights, no tokenizer
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: finetune/v1
        kind: FineTune
        metadata:
          name: bad-model
        model:
          path: base-model
        data:
          source:
            path: data
          splits: {train: train, test: test, sample: test}
        registered_model:
          name: bad-model-model
        endpoint:
          name: bad-model
          deployments:
            - name: local
        """))
    return path


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"]])
def test_unusable_model_folder_fails_before_anything_is_created(spec, capsys, command):
    code, err = run(capsys, command[0], str(spec), *command[1:])
    assert code == 1
    assert f"{spec}:6:9: error: model.path: model.path base-model: no weights" in err
    assert "no tokenizer" in err
    assert "Traceback" not in err
    state = spec.parent / ".finetune"
    created = [p for p in state.rglob("*") if p.is_file() and ("endpoints" in p.parts or "jobs" in p.parts)]
    assert created == []
    assert not (state / "data-cache").exists() or not any((state / "data-cache").iterdir())
