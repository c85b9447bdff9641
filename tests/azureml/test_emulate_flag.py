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
