"""What a user's scripts read: `--json` is exactly one JSON document, and no escape codes reach a non-terminal,
whatever the SDK prints (poll dots on stdout, coloured upload messages on stderr)."""

from __future__ import annotations

import json

from test_apply import apply, run


def test_apply_status_destroy_json_parse_and_output_has_no_escape_codes(emu, workdir, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    spec = workdir / "spec.yaml"
    code, out, err = apply(capsys, spec, "--json")
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    assert "\x1b[" not in out + err
    code, out, err = run(capsys, "status", str(spec), "--json")
    assert code == 0 and json.loads(out)["resources"]
    code, out, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, err = run(capsys, "destroy", str(spec), "--all", "--auto-approve", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "steps": []}


def test_text_progress_lines_are_not_prefixed_by_poll_dots(emu, workdir, capsys):
    code, out, err = apply(capsys, workdir / "spec.yaml")
    assert code == 0, err
    assert not [line for line in (out + err).splitlines() if line.startswith(".")]


JSON_COMMANDS = [
    ["validate"], ["plan"], ["data", "prepare"], ["lock"], ["apply", "--auto-approve"], ["plan"], ["status"],
    ["invoke"], ["runs"], ["export", "--to", "azure-cli", "{out}"], ["destroy", "--auto-approve"],
    ["destroy", "--all", "--auto-approve"], ["destroy", "--all", "--auto-approve"],
]


def test_every_command_with_json_prints_one_document_and_no_escape_codes(emu, workdir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    spec = workdir / "spec.yaml"
    for command in JSON_COMMANDS:
        args = [a.format(out=tmp_path / "exported") for a in command]
        where = 2 if command[0] == "data" else 1
        code, out, err = run(capsys, *args[:where], str(spec), *args[where:], "--json")
        assert code in (0, 2), (command, code, err)
        json.loads(out)  # exactly one document: trailing text or a second document fails here
        assert "\x1b[" not in out + err, command


def test_status_prints_states_as_the_service_spells_them(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    code, out, err = run(capsys, "status", str(spec))
    assert code == 0, err
    assert "[Succeeded]" in out
    assert "ProvisioningState." not in out + err and "State.SUCCEEDED" not in out + err
    report = json.loads(run(capsys, "status", str(spec), "--json")[1])
    states = {r.get("status") for r in report["resources"]} - {None}
    assert states and all("." not in s for s in states), states
