"""`apply --detach`: submit training, do what does not wait on it, exit 0; a later apply finishes (CI runners stop
long before a fine-tuning job does)."""

from __future__ import annotations

import json

import pytest
from emulated import emulated_workspace
from test_apply import apply


@pytest.fixture
def slow_emu(monkeypatch, fast_stream):
    """Simulated time that only moves when the test says so: training stays Running until `advance`."""
    with emulated_workspace(monkeypatch, 1.0) as emulator:
        yield emulator


def test_detached_apply_submits_once_and_the_next_apply_finishes(slow_emu, workdir, capsys):
    emu, spec = slow_emu, workdir / "spec.yaml"
    for name in vars(emu.durations):  # provisioning is instant, training is not
        if not name.startswith("job_"):
            setattr(emu.durations, name, 0.0)
    code, out, err = apply(capsys, spec, "--detach", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] is True
    assert [r["address"] for r in result["detached"]["running"]] == ["job.finetune"]
    assert "model.Phi-3-mini-4k-instruct-ultrachat-200k" in result["detached"]["next_apply"]
    assert len(emu.state["jobs"]) == 1 and emu.state["endpoints"]
    assert not emu.state["models"].get("Phi-3-mini-4k-instruct-ultrachat-200k")

    # a scheduled re-run while training still runs: re-attaches, submits nothing, writes nothing
    emu.reset_log()
    code, out, err = apply(capsys, spec, "--detach")
    assert code == 0, err
    assert "still running: job.finetune" in out and emu.writes() == []

    emu.advance(10 ** 6)  # training finishes
    code, out, err = apply(capsys, spec)
    assert code == 0, err
    assert "Apply complete" in out
    assert len(emu.state["jobs"]) == 1
    assert list(emu.state["models"]["Phi-3-mini-4k-instruct-ultrachat-200k"]["versions"]) == ["1"]
    emu.reset_log()
    assert apply(capsys, spec)[0] == 0 and emu.writes() == []
