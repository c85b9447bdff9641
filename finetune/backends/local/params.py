"""The local trainer's effective parameters as a plan lists them: every value it will use, each with its source.

Read from where the trainer takes them: `config.effective_parameters` (the spec's values over the target's
defaults), `training.trainer_settings` (what the trainer sets on TrainingArguments itself) and the libraries'
own defaults for the rest, as the calibration child read them from TrainingArguments and LoraConfig (cached).
"""

from __future__ import annotations

from typing import Any

from finetune.backends.local.config import DEFAULT_PARAMETERS, LocalTrainConfig
from finetune.backends.local.training import trainer_settings

# What trainer_settings fixes that is not one of the spec's parameters (the rest mirror the parameters).
TRAINER_FIXED = ("eval_strategy", "train_sampling_strategy", "logging_strategy", "save_strategy", "data_seed")


def _row(name: str, value: Any, source: str, note: str = "") -> dict[str, Any]:
    return {"name": name, "value": value, "source": source, "note": note}


def trainer_parameters(config: LocalTrainConfig, spec_parameters: dict[str, Any], *, seed_from_tiny: bool,
                       has_eval: bool, libraries: dict[str, Any] | None, derived: dict[str, str] | None = None
                       ) -> tuple[dict[str, Any], ...]:
    """`derived`: parameters the backend chose from the base model (name -> why), e.g. its LoRA modules."""
    rows = []
    derived = derived or {}
    for name, value in sorted(config.parameters.items()):
        note = ""
        if name in spec_parameters:
            source = "spec"
        elif name in derived:
            source, note = "derived", derived[name]
        elif name == "seed" and seed_from_tiny:
            source = "spec (model.tiny.seed)"
        else:
            source = "target default"
        if name == "precision" and value in ("16", "auto"):
            note = "bf16 on a CUDA GPU that supports it, else fp16; a CPU trains in 32 bits"
        if name.startswith("lora_") and config.parameters["apply_lora"] != "true":
            note = "not used: apply_lora is false"
        rows.append(_row(name, value, source, note))
    device = (libraries or {}).get("device", "cpu")
    settings = trainer_settings(config, device, has_eval)
    if config.model.quantization:
        rows.append(_row("quantization", f"{config.model.quantization} (QLoRA)", "spec (model.quantization)",
                         "NF4 base weights, double quantization; adapters merged into a half-precision base"))
    rows += [_row(name, settings[name], "local trainer") for name in TRAINER_FIXED]
    rows.append(_row("checkpoint_interval_s", config.checkpoint_interval_s, "local trainer",
                     f"keeps {config.checkpoints_to_keep}: an interrupted run resumes from the newest"))
    if libraries is None:
        rows.append(_row("(TrainingArguments, LoraConfig)", "(known after calibration)", "library default",
                         "read by the first plan that is not --offline"))
    else:
        versions = libraries["versions"]
        for name, value in sorted(libraries["training_arguments"].items()):
            rows.append(_row(name, value, f"library default (transformers {versions['transformers']})"))
        if config.parameters["apply_lora"] == "true":
            for name, value in sorted(libraries["lora"].items()):
                rows.append(_row(f"lora_{name}", value, f"library default (peft {versions['peft']})"))
    rows += [_row(name, value, "ignored", "no effect on the local target")
             for name, value in sorted(spec_parameters.items()) if name not in DEFAULT_PARAMETERS]
    return tuple(rows)
