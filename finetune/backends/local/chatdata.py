"""Chat rows -> token ids with loss only on assistant turns, and a padding collator that counts real tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100


def read_conversations(path: str | Path) -> list[list[dict[str, str]]]:
    """The `messages` of each JSONL row (rows as written by the data layer: prompt, prompt_id, messages)."""
    conversations = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            messages = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(messages, list) or not messages:
                raise ValueError(f"{path}:{lineno}: row has no 'messages' list")
            conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return conversations


def encode_conversation(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """Render with the model's chat template; label only the assistant spans.

    Spans come from rendering each prefix (the conversation up to a turn, with the generation prompt, and up to the
    end of that turn) and mapping character offsets to tokens, which works for any template whose renders of a
    prefix are string prefixes of the whole. If a template breaks that, every token is trained on.
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
        end_text = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not text.startswith(end_text) or start > len(end_text):
            spans = [(0, len(text))]
            break
        spans.append((start, len(end_text)))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
                    max_length=max_length)
    ids = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    for idx, (a, b) in enumerate(enc["offset_mapping"]):
        if b > a and any(s <= a < e for s, e in spans):
            labels[idx] = ids[idx]
    return {"input_ids": ids, "labels": labels}


def encode_file(tokenizer: Any, path: str | Path, max_length: int) -> list[dict[str, list[int]]]:
    rows = [encode_conversation(tokenizer, m, max_length) for m in read_conversations(path)]
    # A row whose assistant part was truncated away teaches nothing and yields a NaN loss: drop it.
    return [r for r in rows if any(t != IGNORE_INDEX for t in r["labels"])]


class ChatCollator:
    """Pads a batch to its longest row (right padding); labels padded with IGNORE_INDEX."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for row, f in enumerate(features):
            length = len(f["input_ids"])
            input_ids[row, :length] = torch.tensor(f["input_ids"], dtype=torch.long)
            labels[row, :length] = torch.tensor(f["labels"], dtype=torch.long)
            attention[row, :length] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
