"""The smoke-test request and the responses real chat-completion deployments return.

Request: `{"input_data": {"input_string": [[messages]], "parameters": {...}}, "params": {}}` (the notebook's shape).
Responses seen in the wild: a plain string, `{"output": ...}`, `[{"output": ...}]`, `{"0": ...}`, `[{"0": ...}]`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneError


def sample_messages(sample_file: str | None, row: int | str, seed: int) -> list[dict[str, str]]:
    """The conversation to send: the chosen row, without its final assistant turn (the model should write it)."""
    if not sample_file or not Path(sample_file).exists():
        raise FinetuneError("no sample conversation for the smoke test",
                            hint="set data.splits.sample, or pass --message")
    lines = [line for line in Path(sample_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise FinetuneError(f"{sample_file} has no rows", hint="raise data.split_percentage for the sample split")
    index = random.Random(seed).randrange(len(lines)) if row == "random" else int(row)
    if not 0 <= index < len(lines):
        raise FinetuneError(f"smoke_test.row {index} is out of range: the sample has {len(lines)} rows")
    messages = json.loads(lines[index])["messages"]
    while messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def build_request(sample_file: str | None, row: int | str, seed: int, parameters: dict[str, Any],
                  messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
    conversation = messages or sample_messages(sample_file, row, seed)
    return {"input_data": {"input_string": [conversation], "parameters": dict(parameters)}, "params": {}}


def parse_response(raw: str | bytes | Any) -> str:
    """The generated text from any of the five response shapes."""
    value = raw
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value  # a plain-text body
    for _ in range(3):  # unwrap list -> dict -> value, and JSON encoded twice
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            for key in ("output", "0", 0):
                if key in value:
                    value = value[key]
                    break
            else:
                raise FinetuneError(f"unrecognized response from the endpoint: {json.dumps(value)[:200]}")
        if isinstance(value, str):
            return value
    return json.dumps(value)
