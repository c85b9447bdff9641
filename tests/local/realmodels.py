"""Small models of real architectures, saved as a hub model would be: a few layers, a small hidden size, a BPE
tokenizer trained offline on the quickstart chats with the architecture's own kind of chat template.

    save_model(arch, folder)          # save_pretrained layout (config.json, model.safetensors, tokenizer files)
    hub_cache_model(arch, hf_home, "org/name")  # the same, laid out as huggingface_hub's cache (refs/main)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

QUICKSTART_TRAIN = Path(__file__).resolve().parents[2] / "examples" / "data" / "quickstart" / "train.jsonl"

# Chat templates in each family's style (system/user/assistant, a generation prompt where the family has one).
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
ZEPHYR = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
MISTRAL = ("<s>{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
           "{% elif m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
           "{% else %}{{ m['content'] }}</s>{% endif %}{% endfor %}")
PHI3 = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")

# arch -> (config class, config overrides, special tokens, eos, pad, chat template or None)
ARCHS = {
    "llama": ("LlamaConfig", {"num_key_value_heads": 2}, ["<s>", "</s>", "<unk>"], "</s>", "<unk>", ZEPHYR),
    "mistral": ("MistralConfig", {"num_key_value_heads": 2, "sliding_window": None},
                ["<s>", "</s>", "<unk>"], "</s>", "<unk>", MISTRAL),
    "qwen2": ("Qwen2Config", {"num_key_value_heads": 2}, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
              "<|im_end|>", "<|endoftext|>", CHATML),
    "phi3": ("Phi3Config", {"num_key_value_heads": 4}, ["<|endoftext|>", "<|user|>", "<|assistant|>",
                                                        "<|system|>", "<|end|>"], "<|end|>", "<|endoftext|>", PHI3),
    "gpt2": ("GPT2Config", {}, ["<|endoftext|>"], "<|endoftext|>", None, None),  # no template: ChatML fallback
}


def _texts() -> list[str]:
    rows = [json.loads(line)["messages"] for line in QUICKSTART_TRAIN.read_text(encoding="utf-8").splitlines()]
    return [" ".join(m["content"] for m in messages) for messages in rows]


def build_tokenizer(arch: str, vocab_size: int = 800):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    _, _, special, eos, pad, template = ARCHS[arch]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(_texts(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad,
                                 bos_token="<s>" if "<s>" in special else None)
    if template:
        hf.chat_template = template
    return hf


def build_model(arch: str, tokenizer, seed: int = 0):
    import torch
    import transformers

    config_class, overrides, *_ = ARCHS[arch]
    common = {"vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id,
              "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id}
    if arch == "gpt2":
        config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, **common)
    else:
        config = getattr(transformers, config_class)(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                     num_attention_heads=4, max_position_embeddings=256,
                                                     **overrides, **common)
    config.architectures = [transformers.AutoModelForCausalLM._model_mapping[type(config)].__name__]
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(config)


def save_model(arch: str, folder: Path) -> Path:
    tokenizer = build_tokenizer(arch)
    model = build_model(arch, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def hub_cache_model(arch: str, hf_home: Path, model_id: str, source: Path | None = None) -> tuple[Path, str]:
    """The model in huggingface_hub's cache layout under HF_HOME: blobs named by content hash, snapshot files
    linking to them, refs/main holding the commit. Returns (snapshot folder, commit)."""
    source = source or save_model(arch, hf_home / "src" / arch)
    repo = hf_home / "hub" / ("models--" + model_id.replace("/", "--"))
    commit = hashlib.sha1(model_id.encode() + arch.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copyfile(file, blob)
        link = snapshot / file.name
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot, commit
