"""Fine-tuning component parameters: normalization to what the component expects, and the effective set.

The component takes booleans as the strings "true"/"false" and `deepspeed_stage`/`precision` as string enums, while
users (and the model's own defaults) write `true`, `2` and `16`. We normalize once, here, so the plan, the fingerprint
and the submitted job all see the same values.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any

from finetune.catalog import ComponentInput, ComponentSchema

# Inputs finetune sets itself from other parts of the spec; users set those parts instead.
MANAGED_INPUTS: dict[str, str] = {
    "mlflow_model_path": "set `model:` instead",
    "pytorch_model_path": "set `model:` instead",
    "huggingface_id": "set `model:` instead",
    "train_file_path": "set `data:` instead",
    "validation_file_path": "set `data:` instead",
    "test_file_path": "set `data:` instead",
    "train_mltable_path": "set `data:` instead",
    "validation_mltable_path": "set `data:` instead",
    "test_mltable_path": "set `data:` instead",
    "compute_model_import": "set `compute:` instead",
    "compute_preprocess": "set `compute:` instead",
    "compute_finetune": "set `compute:` instead",
    "compute_model_evaluation": "set `compute:` instead",
    "instance_type_model_import": "set `compute:` instead",
    "instance_type_preprocess": "set `compute:` instead",
    "instance_type_finetune": "set `compute:` instead",
    "instance_type_model_evaluation": "set `compute:` instead",
    "num_nodes_finetune": "set `finetune.num_nodes` instead",
    "task_name": "it is always ChatCompletion",
}

# Shown in every plan even when nobody set them, so users see what training will really do.
KEY_PARAMETERS = (
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim",
    "apply_lora", "lora_r", "lora_alpha", "lora_dropout", "apply_deepspeed", "deepspeed_stage", "precision",
    "max_seq_length", "seed", "save_total_limit", "number_of_gpu_to_use_finetuning",
)


class ParameterError(ValueError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@functools.cache
def _enum_by_lower(enum: tuple[str, ...]) -> dict[str, str]:
    """An enum's values by their lower-case form (some enums list hundreds of values; a plan normalizes dozens)."""
    by_lower: dict[str, str] = {}
    for value in enum:
        by_lower.setdefault(value.lower(), value)
    return by_lower


def normalize(spec: ComponentInput, value: Any) -> str | int | float:
    """Convert `value` to the form the component input expects, or raise ParameterError."""
    if spec.is_asset:
        raise ParameterError(f"'{spec.name}' is a {spec.type} input, not a parameter")
    if spec.type == "string":
        text = _string_form(value)
        if spec.enum is not None:
            if text not in spec.enum:
                text = _enum_by_lower(tuple(spec.enum)).get(text.lower(), text)
            if text not in spec.enum:
                close = difflib.get_close_matches(text, list(spec.enum), n=1, cutoff=0.5)
                raise ParameterError(f"{value!r} is not one of {', '.join(repr(e) for e in spec.enum)}",
                                     f"did you mean '{close[0]}'?" if close else "")
        return text
    if spec.type == "integer":
        number = _number(value, spec)
        if number != int(number):
            raise ParameterError(f"{value!r} is not a whole number")
        result: int | float = int(number)
    elif spec.type == "number":
        result = _number(value, spec)
    elif spec.type == "boolean":
        return _string_form(value)
    else:
        raise ParameterError(f"'{spec.name}' has unsupported type {spec.type}")
    if spec.min is not None and result < spec.min:
        raise ParameterError(f"{value!r} is below the minimum {spec.min:g}")
    if spec.max is not None and result > spec.max:
        raise ParameterError(f"{value!r} is above the maximum {spec.max:g}")
    return result


def _string_form(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any, spec: ComponentInput) -> float:
    if isinstance(value, bool):
        raise ParameterError(f"{value!r} is a boolean; '{spec.name}' takes a {spec.type}")
    try:
        number = float(value)
    except OverflowError:
        raise ParameterError(f"{str(value)[:20]}... is too large for a {spec.type}") from None
    except (TypeError, ValueError):
        raise ParameterError(f"{value!r} is not a {spec.type}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ParameterError(f"{value!r} is not a finite {spec.type}")
    return number


def unknown_parameter_hint(name: str, schema: ComponentSchema) -> str:
    close = difflib.get_close_matches(name, list(schema.inputs), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"see the inputs of {schema.name} {schema.version}"


@dataclass(frozen=True)
class EffectiveParameter:
    name: str
    value: Any
    source: str  # "spec", "model default", "component default", "derived"
    note: str = ""  # e.g. "model default 1 overridden by spec"


@dataclass(frozen=True)
class ParameterResolution:
    parameters: dict[str, EffectiveParameter]  # what is sent (and shown), by name
    dropped: dict[str, str]  # model-default keys the component does not accept -> why


def resolve_parameters(schema: ComponentSchema, spec_params: dict[str, Any], model_defaults: dict[str, Any],
                       policy: str, derived: dict[str, Any], *, show_component_defaults: bool = True
                       ) -> ParameterResolution:
    """Merge component defaults < model defaults < spec values (policy `under`), and record where each came from.

    `over` reproduces the notebook (model defaults win over the spec); `ignore` drops the model defaults.
    Spec values are expected to be normalized already; model defaults are normalized here, and the ones the
    component does not accept (e.g. learning_rate_min) are dropped and reported.
    """
    params: dict[str, EffectiveParameter] = {}
    dropped: dict[str, str] = {}
    for name in KEY_PARAMETERS if show_component_defaults else ():
        if name in schema.inputs and schema.inputs[name].default is not None:
            params[name] = EffectiveParameter(name, normalize(schema.inputs[name], schema.inputs[name].default),
                                              "component default")
    defaults: dict[str, Any] = {}
    if policy != "ignore":
        for name, raw in model_defaults.items():
            if name not in schema.inputs:
                dropped[name] = f"not an input of {schema.name} {schema.version}"
                continue
            try:
                defaults[name] = normalize(schema.inputs[name], raw)
            except ParameterError as exc:
                dropped[name] = f"invalid model default: {exc}"
    for name, value in defaults.items():
        params[name] = EffectiveParameter(name, value, "model default")
    for name, value in spec_params.items():
        default = defaults.get(name)
        if name in defaults and policy == "over":
            note = f"spec value {value!r} overridden by the model default (model_defaults: over)"
            params[name] = EffectiveParameter(name, default, "model default", note)
            continue
        note = f"overrides model default {default!r}" if name in defaults and default != value else ""
        params[name] = EffectiveParameter(name, value, "spec", note)
    for name, value in derived.items():
        params[name] = EffectiveParameter(name, value, "derived", params[name].note if name in params else "")
    return ParameterResolution(dict(sorted(params.items())), dropped)
