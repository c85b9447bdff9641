"""The command line as a user meets it: help with whole summaries and examples, one way to ask for JSON, a prompt
answered "no", and the shared views (training progress line, question/expected/answer)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from finetune.cli import app, main
from finetune.render.exchange import exchange_lines, smoke_test_lines
from finetune.render.progress import StepRate, duration, training_line, training_message

ROOT = Path(__file__).resolve().parents[1]


def commands(group: click.Group = app, prefix: str = "finetune") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found.extend(commands(command, f"{prefix} {name}"))
    return found


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


# ---- help --------------------------------------------------------------------------------------------------------
def test_top_level_help_shows_every_summary_whole_on_one_line():
    result = CliRunner().invoke(app, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    listed = result.output.split("Commands:\n", 1)[1]
    for name, command in commands():
        if name.count(" ") > 1:
            continue  # subcommands are listed by their group's help
        summary = command.get_short_help_str()
        assert summary and not summary.endswith("..."), name
        assert re.search(rf"^  {re.escape(name.split()[-1])} +{re.escape(summary)}$", listed, re.M), (name, listed)
    assert "..." not in listed


@pytest.mark.parametrize(("name", "command"), commands(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_command_has_examples_of_itself(name, command):
    result = CliRunner().invoke(app, [*name.split()[1:], "--help"], terminal_width=100)
    assert result.exit_code == 0
    examples = result.output.split("Examples:\n", 1)
    assert len(examples) == 2, f"{name} --help has no Examples: section"
    shown = [line.strip() for line in examples[1].split("\n\n", 1)[0].splitlines()]
    assert shown and all(line.startswith("finetune ") for line in shown), shown
    assert any(line.startswith(name) for line in shown), shown


# ---- one way to ask for JSON ---------------------------------------------------------------------------------------
def spec_file(folder: Path) -> Path:
    data = folder / "data"
    data.mkdir()
    quickstart = ROOT / "examples" / "data" / "quickstart"
    for name in ("train", "test"):
        (data / f"{name}.jsonl").write_text("\n".join((quickstart / f"{name}.jsonl").read_text().splitlines()[:8])
                                            + "\n")
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: finetune/v1
        kind: FineTune
        metadata: {name: cli-test}
        model:
          tiny: {layers: 1, hidden_size: 32, heads: 2}
        data:
          source: {path: data}
          splits: {train: train, test: test, sample: test}
        registered_model: {name: cli-test-model}
        endpoint:
          name: cli-test
          deployments: [{name: local}]
        """))
    return path


def test_plan_json_is_asked_for_with_json_and_format_json_is_a_deprecated_alias(tmp_path, capsys):
    spec = str(spec_file(tmp_path))
    code, out, err = run(capsys, "plan", spec, "--offline", "--json")
    assert code == 0 and "deprecated" not in err
    document = json.loads(out)
    code, out, err = run(capsys, "plan", spec, "--offline", "--format", "json")
    assert code == 0 and json.loads(out)["changes"] == document["changes"]
    assert "warning: `--format json` is deprecated and will be removed: use --json" in err
    code, out, err = run(capsys, "plan", spec, "--offline", "--format", "markdown")
    assert code == 0 and out.startswith("#") and "deprecated" not in err
    help_text = CliRunner().invoke(app, ["plan", "--help"], terminal_width=100).output
    assert "--format [text|markdown]" in help_text and "json]" not in help_text


# ---- a prompt answered "no" ----------------------------------------------------------------------------------------
def answer_prompt(argv: list[str], answer: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI with a terminal as stdin (so it asks) and `answer` typed at the prompt."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    try:
        os.write(leader, answer.encode() + b"\n")
        return subprocess.run([sys.executable, "-m", "finetune", *argv], stdin=follower, capture_output=True,
                              text=True, cwd=cwd, env=env, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)


def test_no_at_the_apply_prompt_says_cancelled_and_changes_nothing(tmp_path):
    spec = spec_file(tmp_path)
    result = answer_prompt(["apply", str(spec)], "n", tmp_path)
    assert result.returncode == 1
    assert "Apply these changes? [y/N]" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "cancelled: nothing was changed"
    state = tmp_path / ".finetune"
    assert not (state / "endpoints").exists() and not (state / "jobs").exists()


# ---- views ---------------------------------------------------------------------------------------------------------
def test_training_line_shows_what_is_known():
    assert training_line(189, 216, loss=0.4716, eta_s=42) == "step 189/216 (88%) loss 0.47 eta 0:42"
    assert training_line(10, 100, epoch=1.0, epochs=3, loss=0.004) == "step 10/100 (10%) epoch 1/3 loss 4.0e-03"
    assert training_line(7) == "step 7"
    assert training_line(216, 216) == "step 216/216 (100%)"
    assert training_line() == ""
    assert [duration(s) for s in (0, 42, 65, 3723, -3)] == ["0:00", "0:42", "1:05", "1:02:03", "0:00"]


def test_step_rate_estimates_from_the_steps_seen_and_restarts_with_the_run():
    rate = StepRate()
    assert rate.eta(10.0, 0, 100) is None  # one sample: no rate yet
    assert rate.eta(20.0, 10, 100) == pytest.approx(90.0)  # 10 steps in 10 s, 90 to go
    assert rate.eta(30.0, 40, 100) == pytest.approx(30.0)  # 40 steps in 20 s, 60 to go
    assert rate.eta(31.0, 5, 100) is None  # a restarted run starts counting again
    assert rate.eta(32.0, 5, None) is None


def test_training_message_shows_phase_before_steps_and_names_a_job():
    class Progress:  # a backends.base.TrainingProgress
        def __init__(self, **fields):
            defaults = {"state": "Running", "phase": "", "step": None, "total_steps": None, "epoch": None,
                        "total_epochs": None, "loss": None, "eta_s": None, "job": ""}
            self.__dict__.update({**defaults, **fields})

    assert training_message(Progress(phase="loading model")) == "loading model"
    assert training_message(Progress(step=189, total_steps=216, loss=0.47), eta_s=42) == \
        "step 189/216 (88%) loss 0.47 eta 0:42"
    assert training_message(Progress(state="Completed", step=216, total_steps=216), eta_s=3) == \
        "Completed, step 216/216 (100%)"
    assert training_message(Progress(state="Queued", job="ft-1")) == "job ft-1: Queued"
    assert training_message(Progress(job="ft-1", step=3, total_steps=9, epoch=1, total_epochs=3, eta_s=70)) == \
        "job ft-1: step 3/9 (33%) epoch 1/3 eta 1:10"


def test_exchange_lines_align_multi_line_texts_and_skip_a_missing_expected_answer():
    lines = [text for text, _ in exchange_lines({"question": "Why?\nReally?", "expected": None, "answer": ""})]
    assert lines == ["  question: Why?", "            Really?", "  answer:   (empty)"]
    failed = smoke_test_lines({"ok": False, "deployment": "blue", "time": "t", "error": "scoring failed"})
    assert failed == [("Last smoke test on deployment blue FAILED (t): scoring failed", "bold red")]
