"""validate reads what the spec refers to, offline: data rows as `data prepare` would, model folders, the HF cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.cli import main

CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
SPEC = """apiVersion: finetune/v1
kind: FineTune
metadata:
  name: refs
model:
{model}
data:
  source:
    path: data
  splits:
    train: train
    test: test
  invalid_rows: {policy}
registered_model:
  name: refs-model
"""


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def project(tmp_path: Path, *, train: list[str] | None = None, model: str = "  tiny: {}", policy: str = "error"
            ) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    lines = train if train is not None else [json.dumps(CHAT)] * 5
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    (data / "test.jsonl").write_text(json.dumps(CHAT) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(model=model, policy=policy))
    return spec


def model_folder(root: Path, *, chat_template: bool = True, weights: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "tokenizer.json").write_text("{}")
    (root / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"} if chat_template
                                                           else {}))
    if weights:
        (root / "model.safetensors").write_bytes(b"\0")
    return root


def test_valid_data_is_counted(tmp_path, capsys):
    code, out, err = run_cli(capsys, "validate", str(project(tmp_path)))
    assert code == 0, err
    assert "data: train 5 rows, test 1 rows checked" in out


def test_every_broken_line_and_bad_row_at_once(tmp_path, capsys):
    good = json.dumps(CHAT)
    rows = [good, "{not json", good, json.dumps({"messages": [{"role": "user", "content": "q"}]}), "[1, 2",
            json.dumps({"messages": []}), good]
    spec = project(tmp_path, train=rows)
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1
    train = tmp_path / "data" / "train.jsonl"
    assert f"{train}:2: error: data.source: not valid JSON" in err
    assert f"{train}:5: error: data.source: not valid JSON" in err  # reading goes on after a broken line
    assert f"{train}:4: error: data.source: train row is not valid chat: last turn is 'user', not 'assistant'" in err
    assert f"{train}:6: error: data.source: train row is not valid chat: 'messages' is empty" in err
    assert "Traceback" not in err


def test_drop_policy_warns_with_counts(tmp_path, capsys):
    rows = [json.dumps(CHAT)] * 3 + [json.dumps({"messages": [{"role": "user", "content": "q"}]})]
    code, out, err = run_cli(capsys, "validate", str(project(tmp_path, train=rows, policy="drop")))
    assert code == 0, err
    assert "1 of 4 train rows (split train) are not valid chat and will be dropped" in err
    assert "train 3 of 4 rows" in out


def test_missing_split_is_an_error_at_the_source(tmp_path, capsys):
    spec = project(tmp_path)
    (tmp_path / "data" / "test.jsonl").unlink()
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1
    assert f"{spec}:9:5: error: data.source: source split 'test' not found" in err


def test_model_folder_checks(tmp_path, capsys):
    model_folder(tmp_path / "good")
    code, _, err = run_cli(capsys, "validate", str(project(tmp_path, model="  path: good")))
    assert code == 0, err
    assert err == ""
    model_folder(tmp_path / "plain", chat_template=False)
    code, _, err = run_cli(capsys, "validate", str(project(tmp_path, model="  path: plain")))
    assert code == 0
    assert "the tokenizer has no chat template" in err and "chat_template.jinja" in err
    (tmp_path / "plain" / "chat_template.jinja").write_text("{{ messages }}")
    code, _, err = run_cli(capsys, "validate", str(project(tmp_path, model="  path: plain")))
    assert (code, err) == (0, "")
    broken = model_folder(tmp_path / "broken", weights=False)
    (broken / "config.json").write_text("{oops")
    (broken / "tokenizer.json").unlink()
    code, _, err = run_cli(capsys, "validate", str(project(tmp_path, model="  path: broken")))
    assert code == 1
    assert "config.json is not valid JSON (line 1" in err
    assert "no weights" in err and "no tokenizer" in err
    assert "3 errors" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "validate", str(project(tmp_path, model="  path: afile")))
    assert code == 1 and "model.path afile is a file" in err


def test_hf_model_from_the_cache_or_a_note(tmp_path, monkeypatch, capsys):
    hub = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    spec = project(tmp_path, model="  hf: acme/tiny-chat")
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 0
    assert f"hf model acme/tiny-chat is not in the HF cache ({hub}); apply downloads it" in err
    repo = hub / "models--acme--tiny-chat"
    commit = "a" * 40
    model_folder(repo / "snapshots" / commit, chat_template=False)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 0
    assert "cached acme/tiny-chat: the tokenizer has no chat template" in err
    (repo / "snapshots" / commit / "model.safetensors").unlink()
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1 and "cached acme/tiny-chat: no weights" in err


def test_cached_hub_dataset_rows_are_checked(tmp_path, monkeypatch, capsys):
    hub = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    spec = project(tmp_path)
    spec.write_text(spec.read_text().replace("path: data", "hf: acme/chat"))
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert (code, err) == (0, "")  # not fetched yet: plan or apply reads it
    commit = "b" * 40
    snapshot = hub / "datasets--acme--chat" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (hub / "datasets--acme--chat" / "refs").mkdir()
    (hub / "datasets--acme--chat" / "refs" / "main").write_text(commit)
    (snapshot / "train.jsonl").write_text(json.dumps(CHAT) + "\n" + json.dumps({"messages": "hi"}) + "\n")
    (snapshot / "test.jsonl").write_text(json.dumps(CHAT) + "\n")
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1
    assert f"{snapshot / 'train.jsonl'}:2: error: data.source: train row is not valid chat" in err


@pytest.mark.parametrize("env", [{}, {"HF_HOME": "/x/home"}, {"HF_HUB_CACHE": "/y/hub", "HF_HOME": "/x"},
                                 {"XDG_CACHE_HOME": "/z"}])
def test_validate_finds_the_hf_cache_where_the_data_layer_does(env, monkeypatch):
    from finetune.data.hub import hub_cache
    from finetune.deepcheck import _hf_cache

    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _hf_cache() == hub_cache()
