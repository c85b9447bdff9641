"""What a job's command leaves behind, for the one kind of command the emulator can run without running anything:
``echo``. The emulator executes no user code; a command made of ``echo`` parts (``echo "Hello World" >
${{outputs.out}}/helloworld.txt``, the SDK's hello-world components) has a known effect, so the emulated run writes
those files into its output folders and the rest to its stdout, as the real run would. Any other part (``python
train.py ...``) is skipped: its outputs stay empty, as nothing of what it would write can be known.

Placeholders are resolved the way Azure ML resolves them at run time: ``${{inputs.x}}`` to the input's value,
``${{outputs.x}}`` to the output's mount path, and an optional part ``$[[...]]`` dropped when an input it names has
no value.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MOUNT = "/mnt/azureml/cr/j/{run}/cap/data-capability/wd/{name}"
_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([\w.-]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
SEPARATORS = {"&&", "||", ";", "&", "|", ";;"}


@dataclass
class Effects:
    stdout: str = ""
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (output name, path inside it) -> content


def run_echo(command: str, run_id: str, inputs: dict[str, str], outputs: list[str]) -> Effects:
    """The stdout and output files of `command`'s ``echo`` parts."""
    mounts = {name: MOUNT.format(run=run_id, name=name) for name in outputs}
    text = _OPTIONAL.sub(lambda m: _optional(m.group(1), inputs), command)
    text = _PLACEHOLDER.sub(lambda m: _value(m.group(1), m.group(2), inputs, mounts), text)
    effects = Effects()
    for words in _simple_commands(text):
        if not words or words[0] != "echo":
            continue
        line, target, append = _echo(words[1:])
        if target is None:
            effects.stdout += line
            continue
        found = _in_output(target, mounts)
        if found is not None:
            before = effects.files.get(found, b"") if append else b""
            effects.files[found] = before + line.encode()
    return effects


def _simple_commands(text: str) -> list[list[str]]:
    """The words of each simple command (`a>>f` is `a`, `>>`, `f`); one whose output is piped on is left out."""
    found: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # unbalanced quotes: not a line the emulator can read
            continue
        words: list[str] = []
        for token in tokens + [";"]:
            if token not in SEPARATORS:
                words.append(token)
                continue
            if token != "|":
                found.append(words)
            words = []
    return found


def _optional(part: str, inputs: dict[str, str]) -> str:
    names = [n for kind, n in _PLACEHOLDER.findall(part) if kind == "inputs"]
    return part if all(inputs.get(n) not in (None, "") for n in names) else ""


def _value(kind: str, name: str, inputs: dict[str, str], mounts: dict[str, str]) -> str:
    return (inputs if kind == "inputs" else mounts).get(name, "")


def _echo(args: list[str]) -> tuple[str, str | None, bool]:
    """echo's line and where it goes: (text, redirect target or None, appending)."""
    words, target, append = [], None, False
    it = iter(args)
    for word in it:
        if word in (">", ">>"):
            target, append = next(it, None), word == ">>"
        else:
            words.append(word)
    newline = True
    if words and words[0] == "-n":
        words, newline = words[1:], False
    return " ".join(words) + ("\n" if newline else ""), target, append


def _in_output(target: str, mounts: dict[str, str]) -> tuple[str, str] | None:
    for name, mount in mounts.items():
        if target.startswith(mount + "/") and len(target) > len(mount) + 1:
            return name, target[len(mount) + 1:]
    return None
