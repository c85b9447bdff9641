"""`--json` on the local target: every command, one spec and a folder, prints exactly one JSON document on stdout
and no escape codes anywhere (the azureml counterpart is tests/azureml/test_output.py)."""

from __future__ import annotations

import json

from test_lifecycle import run, spec  # noqa: F401 - `spec` is the fixture

# In lifecycle order, repeats included: a second destroy --all has nothing left and must still print one document.
COMMANDS = [
    ["validate"], ["plan"], ["data", "prepare"], ["lock"], ["apply", "--auto-approve"], ["plan"], ["status"],
    ["invoke"], ["runs"], ["export", "--to", "azure-cli", "{out}"], ["validate", "{dir}"], ["plan", "{dir}"],
    ["status", "{dir}"], ["destroy", "--auto-approve"], ["destroy", "--all", "--auto-approve"],
    ["destroy", "--all", "--auto-approve"],
]


def test_every_command_with_json_prints_one_document_and_no_escape_codes(spec, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("NO_COLOR", "1")
    folder = spec.parent
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
