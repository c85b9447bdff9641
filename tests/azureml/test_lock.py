"""The lock file through the CLI against the emulator: lock, plan with pins, first apply, upgrade, uncovered edits."""

from __future__ import annotations

import json

import pytest
import yaml
from test_apply import apply, edit, run

from finetune.errors import FinetuneError
from finetune.lockfile import read_lock


def test_lock_pins_what_the_labels_resolve_to_and_plan_uses_the_pins(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = run(capsys, "lock", str(spec))
    assert code == 0, err
    lock = yaml.safe_load((workdir / "spec.lock.yaml").read_text())
    assert lock["pins"]["model"] == {"name": "azureml/Phi-3-mini-4k-instruct", "requested": "latest",
                                     "resolved": "15"}
    assert lock["pins"]["component"]["requested"] == "latest"
    # offline, the pins are known without reading anything
    code, out, _ = run(capsys, "plan", str(spec), "--offline", "--json")
    pins = {p["what"]: p for p in json.loads(out)["pins"]}
    assert pins["base model"]["resolved"] == "15" and pins["base model"]["locked"] is True
    assert pins["component"]["resolved"] == lock["pins"]["component"]["resolved"]
    # a second lock changes nothing
    before = (workdir / "spec.lock.yaml").read_text()
    code, out, _ = run(capsys, "lock", str(spec))
    assert code == 0 and "up to date" in out and (workdir / "spec.lock.yaml").read_text() == before


def test_first_apply_writes_the_lock_and_the_next_plan_uses_it(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    assert "wrote spec.lock.yaml" in err
    assert read_lock(workdir / "spec.lock.yaml").pins["model"].resolved == "15"
    emu.reset_log()
    code, _, err = apply(capsys, spec)
    assert code == 0 and emu.writes() == []


def test_upgrade_moves_the_pins_and_says_what_moved(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert run(capsys, "lock", str(spec))[0] == 0
    path = workdir / "spec.lock.yaml"
    path.write_text(path.read_text().replace("resolved: '15'", "resolved: '14'"))
    code, out, _ = run(capsys, "lock", str(spec), "--upgrade", "--json")
    assert code == 0
    assert json.loads(out)["changes"] == ["~ model azureml/Phi-3-mini-4k-instruct: 14 -> 15"]
    assert read_lock(path).pins["model"].resolved == "15"


def test_a_spec_edit_the_lock_does_not_cover_is_reported_not_re_resolved(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    assert run(capsys, "lock", str(spec))[0] == 0
    edit(spec, "name: Phi-3-mini-4k-instruct\n", "name: Phi-3.5-mini-instruct\n")
    code, _, err = run(capsys, "plan", str(spec))
    assert code == 1
    assert "spec.lock.yaml does not cover the spec: model is azureml/Phi-3.5-mini-instruct" in err
    assert "finetune lock SPEC --upgrade" in err and "Traceback" not in err


def test_a_pinned_spec_needs_no_lock_and_a_broken_lock_is_one_line(emu, workdir, capsys, tmp_path):
    spec = workdir / "spec.yaml"
    edit(spec, "label: latest", "version: 15")
    edit(spec, "    label: latest\n", "    version: 0.0.82\n")
    code, out, _ = run(capsys, "lock", str(spec))
    assert code == 0 and "Nothing to lock" in out and not (workdir / "spec.lock.yaml").exists()
    broken = tmp_path / "x.lock.yaml"
    broken.write_text("version: [")
    with pytest.raises(FinetuneError, match="not a readable finetune lock file"):
        read_lock(broken)
