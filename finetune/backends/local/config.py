"""The local training job's configuration: plain, JSON-serializable, hashed to recognise the same job."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Parameter names and defaults follow the Azure ML chat-completion fine-tuning component, so one spec means
# the same thing on both targets. Values may arrive as strings (the component takes strings); they are coerced.
DEFAULT_PARAMETERS: dict[str, Any] = {
    "num_train_epochs": 1,
    "max_steps": -1,
    "per_device_train_batch_size": 1,
    "per_device_eval_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "learning_rate": 2e-5,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "apply_lora": "true",
    "lora_r": 8,
    "lora_alpha": 128,
    "lora_dropout": 0.0,
    "lora_target_modules": "all-linear",
    "max_seq_length": 2048,
    "precision": "auto",  # half precision (bf16 where supported, else fp16) on CUDA, 32 bits on CPU
    "seed": 42,
    "logging_steps": 1,
}

_INT = {"num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
        "gradient_accumulation_steps", "warmup_steps", "lora_r", "lora_alpha", "max_seq_length", "seed",
        "logging_steps"}
_FLOAT = {"learning_rate", "weight_decay", "lora_dropout"}
_BOOL = {"apply_lora"}


class ConfigError(ValueError):
    """A configuration the local trainer cannot run."""


def effective_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with the given parameters, typed; unknown names are an error (a typo must not be ignored)."""
    given = dict(parameters or {})
    unknown = sorted(set(given) - set(DEFAULT_PARAMETERS))
    if unknown:
        raise ConfigError(f"unknown training parameter(s): {', '.join(unknown)}")
    out = {**DEFAULT_PARAMETERS, **given}
    try:
        for key in _INT:
            out[key] = int(float(out[key]))  # "3", 3.0 and 3 all mean 3
        for key in _FLOAT:
            out[key] = float(out[key])
        for key in _BOOL:
            out[key] = "true" if str(out[key]).strip().lower() in {"true", "1", "yes"} else "false"
        out["precision"] = str(out["precision"]).strip()
    except ValueError as exc:
        raise ConfigError(f"bad training parameter value: {exc}") from exc
    if out["precision"] not in {"32", "16", "auto"}:
        raise ConfigError(f"precision must be '32', '16' or 'auto', got {out['precision']!r}")
    return out


@dataclass
class TinyModel:
    """A small random causal LM built from a config, with a tokenizer trained on the training data (offline)."""

    layers: int = 2
    hidden: int = 128
    heads: int = 4
    intermediate: int | None = None  # default 4 * hidden
    vocab_size: int = 2000  # an upper bound: a small corpus saturates earlier, the model uses the real size
    max_position: int = 512


@dataclass
class ModelSource:
    """Exactly one of hf (a Hugging Face id, needs network or a warm cache), path (a local model dir) or tiny."""

    hf: str | None = None
    path: str | None = None
    tiny: TinyModel | None = None
    revision: str | None = None  # for hf: the commit resolved at plan time, so the job trains those weights
    quantization: str | None = None  # "4bit": QLoRA (hf or path, CUDA + bitsandbytes)

    def __post_init__(self) -> None:
        if isinstance(self.tiny, dict):
            self.tiny = TinyModel(**self.tiny)
        if sum(x is not None for x in (self.hf, self.path, self.tiny)) != 1:
            raise ConfigError("model source needs exactly one of: hf, path, tiny")
        if self.quantization not in (None, "4bit") or (self.quantization and self.tiny is not None):
            raise ConfigError(f"quantization {self.quantization!r}: only '4bit', for an hf or path model")

    def describe(self) -> str:
        quantized = f" ({self.quantization})" if self.quantization else ""
        if self.hf:
            return f"hf:{self.hf}" + (f"@{self.revision}" if self.revision else "") + quantized
        if self.path:
            return f"path:{self.path}{quantized}"
        return "tiny:" + json.dumps(asdict(self.tiny), sort_keys=True)


@dataclass
class MlflowSettings:
    tracking_uri: str
    experiment_name: str = "finetune"
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalTrainConfig:
    model: ModelSource
    train_file: str
    output_dir: str
    validation_file: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    mlflow: MlflowSettings | None = None
    # Checkpoints bound what an interruption costs: every N optimizer steps and/or every S seconds of training.
    checkpoint_every_steps: int | None = None
    checkpoint_interval_s: float | None = 60.0
    checkpoints_to_keep: int = 2
    # Batches of similar lengths: less padding, ~25% more real tokens/s on the quickstart chats. Changes batch
    # composition, hence part of the training hash.
    group_by_length: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelSource(**self.model)
        if isinstance(self.mlflow, dict):
            self.mlflow = MlflowSettings(**self.mlflow)
        self.parameters = effective_parameters(self.parameters)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalTrainConfig:
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LocalTrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def training_hash(self) -> str:
        """What decides the trained weights: same hash, same job (output dir and tracking settings excluded).

        File contents are not read here; the engine's fingerprint covers data content. Paths are included so a
        different file is a different job.
        """
        data = self.to_dict()
        for key in ("output_dir", "mlflow", "checkpoint_every_steps", "checkpoint_interval_s", "checkpoints_to_keep"):
            data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
