"""Every malformed spec in tests/spec/invalid gets one located error line per problem, exit 1, no traceback."""

import re
from pathlib import Path

import pytest

from finetune.cli import main

CORPUS = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
# spec problems: file:line:column; rows of a data file the spec refers to: file:line
ERROR_LINE = re.compile(r"^(?P<file>[^:]+\.(yaml|jsonl)):(?P<line>\d+)(:(?P<col>\d+))?: error: .+")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_spec_is_reported_with_location(path: Path, capsys):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert "Traceback" not in out + err
    assert expected in err
    error_lines = [line for line in err.splitlines() if " error: " in line]
    assert error_lines, err
    for line in error_lines:
        match = ERROR_LINE.match(line)
        assert match, f"not located: {line}"
        located = Path(match["file"])
        if located != path:  # a problem in a data file the spec refers to, at that file's line
            assert located.is_relative_to(path.parent.resolve()), line
        assert 1 <= int(match["line"]) <= len(located.read_text().splitlines()) + 1


def test_all_problems_are_reported_at_once(tmp_path, capsys):
    base = (Path(__file__).parent / "invalid" / "typo-top-level.yaml").read_text()
    spec = tmp_path / "many.yaml"
    spec.write_text(base.replace("split_percentage: 5", "split_percentage: 500")
                    .replace("name: corpus-endpoint", "name: x_y"))
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1
    assert "unknown key 'compte'" in err
    assert "split_percentage" in err
    # The semantic checks of the sections the schema accepted run in the same pass: the endpoint name too.
    assert "'x_y' is not a valid endpoint name" in err
    # ...but not the knock-on "azureml needs compute:" of the misspelled section.
    assert "needs a `compute:`" not in err
    assert "3 errors" in err


def test_missing_file_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert err.strip() == f"error: spec file not found: {tmp_path / 'nope.yaml'}"


def test_json_output_lists_diagnostics(capsys):
    import json

    code, out, _ = run_cli(capsys, "validate", "--json", str(Path(__file__).parent / "invalid" / "traffic-sum.yaml"))
    assert code == 1
    body = json.loads(out)
    assert body["ok"] is False
    assert body["diagnostics"][0]["location"]["line"] == 34
    assert body["diagnostics"][0]["path"] == "endpoint.traffic"
