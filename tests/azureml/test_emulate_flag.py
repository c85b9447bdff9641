"""`--emulate`: a user rehearses an azureml spec end to end; the emulated workspace persists across commands."""

from __future__ import annotations

import json

import pytest

from finetune.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_rehearsal_across_commands(workdir, capsys, fast_stream):
    spec = str(workdir / "spec.yaml")
    code, out, _ = run(capsys, "plan", spec, "--emulate", "--json")
    assert code == 0 and json.loads(out)["summary"]["create"] == 9
    code, _, err = run(capsys, "apply", spec, "--emulate", "--auto-approve")
    assert code == 0, err
    assert (workdir / ".finetune" / "emulator").is_dir()
    code, out, _ = run(capsys, "plan", spec, "--emulate", "--detailed-exitcode")
    assert code == 0, out  # the second process sees the first one's workspace: nothing to change
    code, out, _ = run(capsys, "status", spec, "--emulate", "--json")
    assert all(r["exists"] for r in json.loads(out)["resources"])
    code, out, _ = run(capsys, "invoke", spec, "--emulate", "-m", "rehearsal")
    assert code == 0 and "rehearsal" in out
    code, _, err = run(capsys, "destroy", spec, "--emulate", "--auto-approve")
    assert code == 0, err
    code, out, _ = run(capsys, "plan", spec, "--emulate", "--json")
    changes = {c["address"]: c["action"] for c in json.loads(out)["changes"]}
    assert changes["endpoint.ultrachat-completion"] == "create" and changes["job.finetune"] == "noop"


BANNER = "rehearsal: --emulate runs against the local Azure ML emulator"


@pytest.mark.parametrize("command", [("plan", "--json"), ("status",), ("destroy", "--auto-approve"),
                                     ("lock",), ("invoke", "-m", "hi")])
def test_every_emulated_command_says_it_is_a_rehearsal_on_one_stderr_line(workdir, capsys, fast_stream, command):
    code, out, err = run(capsys, command[0], str(workdir / "spec.yaml"), "--emulate", *command[1:])
    banners = [line for line in err.splitlines() if BANNER in line]
    assert len(banners) == 1 and "not Azure" in banners[0] and str(workdir / ".finetune" / "emulator") in banners[0]
    assert BANNER not in out
    if command[-1] == "--json":
        assert code == 0 and json.loads(out)  # stdout is still one JSON document


def test_no_banner_without_emulate(workdir, capsys):
    _, _, err = run(capsys, "plan", str(workdir / "spec.yaml"), "--offline")
    assert BANNER not in err


def test_saved_plan_remembers_it_was_made_against_the_emulator(workdir, capsys, fast_stream):
    spec, saved = str(workdir / "spec.yaml"), str(workdir / "plan.json")
    code, _, err = run(capsys, "plan", spec, "--emulate", "--out", saved)
    assert code == 0, err
    assert json.loads((workdir / "plan.json").read_text())["target"]["emulated"] is True

    code, out, err = run(capsys, "apply", saved, "--auto-approve")  # no --emulate: refused before any connection
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert "was planned against the Azure ML emulator (--emulate)" in line
    assert f"finetune apply {saved} --emulate" in line

    code, _, err = run(capsys, "apply", saved, "--emulate", "--auto-approve")
    assert code == 0, err


def test_plan_of_a_workspace_is_refused_by_an_emulated_apply(emu, workdir, capsys):
    spec, saved = str(workdir / "spec.yaml"), str(workdir / "plan.json")
    assert run(capsys, "plan", spec, "--out", saved)[0] == 0
    assert "emulated" not in json.loads((workdir / "plan.json").read_text())["target"]
    code, _, err = run(capsys, "apply", saved, "--emulate", "--auto-approve")
    assert code == 1
    [line] = err.strip().splitlines()
    assert "not the emulator" in line and "apply it without --emulate" in line
    assert emu.writes() == []
