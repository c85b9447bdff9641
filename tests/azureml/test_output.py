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
