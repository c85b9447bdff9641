"""The chat request sent to an endpoint (smoke test or `finetune invoke`) and the responses deployments return.

Request: `{"input_data": {"input_string": [[messages]], "parameters": {...}}, "params": {}}` (the notebook's shape),
with the generation parameters the notebook sends: temperature, top_p, do_sample, max_new_tokens.
Responses seen in the wild: a plain string, `{"output": ...}`, `[{"output": ...}]`, `{"0": ...}`, `[{"0": ...}]`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneError


@dataclass(frozen=True)
class ChatRequest:
    """One conversation to send, with what a sample row expected its answer to be."""

    messages: list[dict[str, str]]
    parameters: dict[str, Any]
    expected: str | None = None  # the sample row's final assistant turn; None for a typed message

    @property
    def question(self) -> str:
        """The last user turn: what the model is asked to answer."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    def body(self) -> dict[str, Any]:
        return {"input_data": {"input_string": [self.messages], "parameters": dict(self.parameters)}, "params": {}}


@dataclass(frozen=True)
class Exchange:
    """A request and the answer it got: what apply's smoke test, `invoke` and `status` show."""

    question: str
    expected: str | None
    answer: str
    parameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "expected": self.expected, "answer": self.answer,
                "parameters": self.parameters}


def sample_request(sample_file: str | None, row: int | str, seed: int, parameters: dict[str, Any]) -> ChatRequest:
    """The chosen sample row without its final assistant turn (the model should write it; it is the expected
    answer)."""
    if not sample_file or not Path(sample_file).exists():
        raise FinetuneError("no sample conversation for the smoke test",
                            hint="set data.splits.sample, or pass --message")
    lines = [line for line in Path(sample_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise FinetuneError(f"{sample_file} has no rows", hint="raise data.split_percentage for the sample split")
    index = random.Random(seed).randrange(len(lines)) if row == "random" else int(row)
    if not 0 <= index < len(lines):
        raise FinetuneError(f"smoke_test.row {index} is out of range: the sample has {len(lines)} rows")
    messages = [{"role": m["role"], "content": m["content"]} for m in json.loads(lines[index])["messages"]]
    expected = None
    if messages and messages[-1]["role"] == "assistant":
        expected = messages[-1]["content"]
    while messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return ChatRequest(messages, dict(parameters), expected)


def message_request(message: str, parameters: dict[str, Any]) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": message}], dict(parameters))


def build_request(sample_file: str | None, row: int | str, seed: int, parameters: dict[str, Any]) -> dict[str, Any]:
    """The smoke-test request body (what `export` writes as the sample request file)."""
    return sample_request(sample_file, row, seed, parameters).body()


def generation_parameters(base: dict[str, Any], *, temperature: float | None = None, top_p: float | None = None,
                          max_new_tokens: int | None = None) -> dict[str, Any]:
    """The spec's smoke-test parameters with `invoke`'s options over them. Temperature 0 means greedy decoding
    (`do_sample: false`, no temperature: Hugging Face generation refuses to sample at 0); a positive one samples."""
    parameters = dict(base)
    if top_p is not None:
        parameters["top_p"] = top_p
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    if temperature is not None:
        if temperature == 0:
            parameters.pop("temperature", None)
            parameters["do_sample"] = False
        else:
            parameters["temperature"] = temperature
            parameters["do_sample"] = True
    return parameters


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
