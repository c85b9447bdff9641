"""The base model of a local run, found before anything heavy starts: its folder (a saved model, or a snapshot in
the Hugging Face cache), its architecture, the LoRA modules that fit it, and whether 4-bit QLoRA can run here.

The folder's contents (config, weights, tokenizer) are checked by `finetune.deepcheck` before every plan; here, the
plan's resolve step refuses a hub model that is neither cached nor downloadable in milliseconds with one line (it
used to fail a minute into the training process) and pins the cached commit. Only the standard library and file
reads: no torch, no transformers.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from finetune.data.hub import hub_cache
from finetune.deepcheck import cached_snapshot as snapshot_folder
from finetune.errors import FinetuneError

CONNECT_TIMEOUT_S = 1.0

# Attention and MLP projections by architecture (config.json `model_type`): LoRA on all of them is what the QLoRA
# paper found to match full fine-tuning; attention alone (peft's own default for these) learns less. Names are the
# modules' attribute names in transformers' implementation of each architecture (tests check each one exists).
_LLAMA_STYLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": _LLAMA_STYLE,
    "mistral": _LLAMA_STYLE,
    "qwen2": _LLAMA_STYLE,
    "qwen3": _LLAMA_STYLE,
    "gemma": _LLAMA_STYLE,
    "gemma2": _LLAMA_STYLE,
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
}
FALLBACK_TARGETS = "all-linear"  # peft's own choice: every linear layer but the output head


class BaseModelError(FinetuneError):
    """The base model cannot be used here (missing, incomplete, or needs what this machine lacks)."""


@dataclass(frozen=True)
class BaseModel:
    reference: str  # what identifies the weights: hf:<id>@<commit> or path:<folder>
    folder: Path | None  # None: a hub model not cached yet, which the training process downloads
    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    commit: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def architecture(self) -> str:
        return self.architectures[0] if self.architectures else (self.model_type or "unknown")

    def lora_targets(self) -> str:
        """Comma-separated module names for this architecture, or peft's `all-linear` when it is not in the table."""
        targets = LORA_TARGETS.get(self.model_type or "")
        return ",".join(targets) if targets else FALLBACK_TARGETS


def locate_path(folder: Path) -> BaseModel:
    """A saved model folder (save_pretrained's layout)."""
    return _inspect(folder, f"path:{folder}")


def locate_hf(model_id: str, revision: str | None = None) -> BaseModel:
    """A hub model: its snapshot in the local Hugging Face cache when there is one (no network), else checked to be
    downloadable now (a 1-second connect), so an unreachable hub fails at plan time and not in the training job."""
    snapshot, commit = cached_snapshot(model_id, revision)
    if snapshot is not None:
        return _inspect(snapshot, f"hf:{model_id}@{commit}", commit=commit)
    fix = (f"download it once with network (`hf download {model_id}`, into {hub_cache()}), then run with "
           f"HF_HUB_OFFLINE=1; or save it to a folder and use `model.path`")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise BaseModelError(f"{model_id} is not in the Hugging Face cache ({hub_cache()}) and "
                             "HF_HUB_OFFLINE is set", hint=fix)
    problem = hub_unreachable()
    if problem:
        raise BaseModelError(f"{model_id} is not in the Hugging Face cache ({hub_cache()}) and the hub "
                             f"cannot be reached ({problem})", hint=fix)
    return BaseModel(f"hf:{model_id}" + (f"@{revision}" if revision else ""), None,
                     warnings=(f"{model_id} is not cached: the training job downloads it first",))


def cached_snapshot(model_id: str, revision: str | None = None) -> tuple[Path | None, str | None]:
    """The snapshot folder and commit of a cached hub model (huggingface_hub's layout: refs/<branch> holds the
    commit, snapshots/<commit>/ the files)."""
    snapshot = snapshot_folder(hub_cache(), model_id, revision)
    return (snapshot, snapshot.name) if snapshot is not None else (None, None)


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (None when a TCP connection to it opens within a second)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return str(exc)
    return None


def _inspect(folder: Path, reference: str, commit: str | None = None) -> BaseModel:
    """What the folder's config says it is. An unreadable config is deepcheck's error, raised before plans; here it
    only means the architecture is unknown (status reads the target even when the base model is gone)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    warnings = () if has_chat_template(folder) else (
        f"{reference} has no chat template: conversations are formatted as ChatML",)
    return BaseModel(reference, folder, config.get("model_type"), tuple(config.get("architectures") or ()), commit,
                     warnings)


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists():
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False


def qlora_unavailable() -> str | None:
    """Why 4-bit QLoRA cannot run on this machine (None when it can): it needs bitsandbytes and a CUDA GPU."""
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    import torch  # only reached when bitsandbytes is there, i.e. on a machine set up for it

    if not torch.cuda.is_available():
        return "no CUDA GPU is available (bitsandbytes' 4-bit kernels need one)"
    return None

