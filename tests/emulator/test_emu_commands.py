"""The emulator's reading of a command's echo parts: what a run writes to its outputs and its stdout."""

from __future__ import annotations

from finetune.testing.emulator.commands import run_echo


def test_echo_parts_write_outputs_and_stdout_and_the_rest_is_skipped():
    command = ("echo Hello World & echo [${{inputs.n}}] $[[--x ${{inputs.x}}]] & "
               "echo ${{outputs.out}} > ${{outputs.out}}/where && echo -n a >> ${{outputs.out}}/log; "
               "echo b>>${{outputs.out}}/log\npython train.py --out ${{outputs.out}} > ${{outputs.out}}/never")
    effects = run_echo(command, "run-1", {"n": "3"}, ["out", "default"])
    mount = "/mnt/azureml/cr/j/run-1/cap/data-capability/wd/out"
    assert effects.stdout == "Hello World\n[3]\n"  # the optional part names an input without a value: dropped
    assert effects.files == {("out", "where"): f"{mount}\n".encode(), ("out", "log"): b"ab\n"}


def test_quotes_optional_parts_pipes_and_unreadable_lines():
    command = ('echo go $[[--x ${{inputs.x}}]] && echo "a & b > c" > ${{outputs.o}}/f\n'
               'echo "unbalanced > ${{outputs.o}}/g\necho piped | tee ${{outputs.o}}/h')
    effects = run_echo(command, "r", {"x": "1"}, ["o"])
    assert effects.stdout == "go --x 1\n"  # the piped echo's line went to tee, which the emulator does not run
    assert effects.files == {("o", "f"): b"a & b > c\n"}
    assert run_echo("echo hi > /tmp/elsewhere", "r", {}, ["o"]).files == {}  # not inside an output: not kept
