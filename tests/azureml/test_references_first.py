"""apply creates nothing until every reference it needs has resolved: the model, the component, the VM sizes and the
data. A bad one fails the apply before its first write (the request log holds no PUT, POST or DELETE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.cli import main


def apply(capsys, spec: Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["apply", str(spec), "--auto-approve"])
    return info.value.code, capsys.readouterr().err


def edit(spec: Path, old: str, new: str) -> None:
    text = spec.read_text()
    assert old in text, old
    spec.write_text(text.replace(old, new, 1))


def assert_nothing_created(emu) -> None:
    assert emu.write_count() == 0, [(r.method, r.path) for r in emu.writes()]
    assert not any(r.method == "PUT" for r in emu.requests)
    for kind in ("computes", "data", "jobs", "endpoints"):
        assert not emu.state[kind], kind


@pytest.mark.parametrize("case, old, new, message", [
    ("model not in the registry", "name: Phi-3-mini-4k-instruct\n", "name: Phi-9-nano\n", "Phi-9-nano"),
    ("model version not in the registry", "label: latest            #", "version: 99 #", "version 99"),
    ("component version not in the registry", "    name: chat_completion_pipeline\n    label: latest",
     "    name: chat_completion_pipeline\n    version: 9.9.9", "9.9.9"),
])
def test_a_reference_that_does_not_resolve_creates_nothing(emu, workdir, capsys, case, old, new, message):
    spec = workdir / "spec.yaml"
    edit(spec, old, new)
    code, err = apply(capsys, spec)
    assert code == 1, case
    assert message in err and "Traceback" not in err
    assert_nothing_created(emu)


def test_invalid_data_creates_nothing(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    train = workdir / "data" / "train_sft.jsonl"
    rows = train.read_text().splitlines()
    rows[1] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    train.write_text("\n".join(rows) + "\n")
    code, err = apply(capsys, spec)
    assert code == 1
    assert f"{train}:2" in err and "not 'assistant'" in err
    assert_nothing_created(emu)


def test_a_typo_in_the_model_name_is_refused_before_the_target_is_read(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    edit(spec, "name: Phi-3-mini-4k-instruct\n", "name: Phi-3-mini-4k-instrut\n")
    code, err = apply(capsys, spec)
    assert code == 1
    assert "did you mean 'Phi-3-mini-4k-instruct'?" in err
    assert emu.requests == [] or not any(r.method != "GET" for r in emu.requests)
    assert_nothing_created(emu)
