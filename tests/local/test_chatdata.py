"""Tiny tokenizer and chat encoding: deterministic, ChatML template, loss only on assistant turns."""

import json

import pytest

from finetune.backends.local.chatdata import IGNORE_INDEX, encode_conversation, read_conversations

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Water a fern?"},
        {"role": "assistant", "content": "Twice a week."}, {"role": "user", "content": "And a cactus?"},
        {"role": "assistant", "content": "Every three weeks."}]


@pytest.fixture(scope="module")
def tokenizer(chat_files):
    pytest.importorskip("transformers")
    from finetune.backends.local.tiny import build_tokenizer

    return build_tokenizer(chat_files["train"], 600)


def test_tokenizer_is_deterministic_and_sized_by_the_corpus(tokenizer, chat_files):
    from finetune.backends.local.tiny import build_tokenizer

    assert build_tokenizer(chat_files["train"], 600).get_vocab() == tokenizer.get_vocab()
    assert 259 < len(tokenizer) <= 600  # 256 bytes + 3 special tokens, plus merges
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_template_survives_save_and_load(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = loaded.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nWater a fern?<|im_end|>" in text


def test_only_assistant_turns_are_labelled(tokenizer):
    enc = encode_conversation(tokenizer, CHAT, max_length=512)
    labelled = tokenizer.decode([t for t in enc["labels"] if t != IGNORE_INDEX])
    assert labelled == "Twice a week.<|im_end|>\nEvery three weeks.<|im_end|>\n"
    assert len(enc["input_ids"]) == len(enc["labels"])


def test_truncation_and_rows_without_messages(tokenizer, tmp_path):
    enc = encode_conversation(tokenizer, CHAT, max_length=8)
    assert len(enc["input_ids"]) == 8
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_conversations(bad)


def test_collator_pads_right(tokenizer):
    pytest.importorskip("torch")
    from finetune.backends.local.chatdata import ChatCollator

    rows = [encode_conversation(tokenizer, CHAT[:3], 512), encode_conversation(tokenizer, CHAT, 512)]
    batch = ChatCollator(tokenizer.pad_token_id)(rows)
    short = len(rows[0]["input_ids"])
    assert batch["input_ids"].shape == (2, len(rows[1]["input_ids"]))
    assert batch["attention_mask"][0, short:].sum() == 0 and batch["attention_mask"][0, :short].all()
    assert (batch["labels"][0, short:] == IGNORE_INDEX).all()
