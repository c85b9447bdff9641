"""What a registry model says about itself: allow lists and model_specific_defaults, in either tag layout.

Older versions carry `finetune_compute_allow_list` / `inference_compute_allow_list` tags (Python-literal strings, as
the notebook reads them with ast.literal_eval); newer ones moved the lists to `system_metadata` (supportedComputes or
SKU.*RecommendedSkus). Either may be missing; then the list is unknown, not empty.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    version: str
    id: str
    finetune_skus: tuple[str, ...] | None
    inference_skus: tuple[str, ...] | None
    defaults: dict[str, Any]


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    for parse in (ast.literal_eval, json.loads):
        try:
            return parse(value)
        except (ValueError, SyntaxError):
            continue
    return None


def _system_metadata(properties: dict[str, Any], tags: dict[str, Any]) -> dict[str, Any]:
    for holder in (properties, tags):
        raw = holder.get("system_metadata") or holder.get("systemMetadata")
        parsed = _literal(raw) if raw is not None else None
        if isinstance(parsed, dict):
            return parsed
    return {}


def _sku_list(tags: dict[str, Any], meta: dict[str, Any], properties: dict[str, Any], tag: str, computes: str,
              recommended: str, prop: str) -> tuple[str, ...] | None:
    value = _literal(tags.get(tag)) if tag in tags else None
    if not value:
        value = (meta.get("supportedComputes") or {}).get(computes) or (meta.get("SKU") or {}).get(recommended)
    if not value and isinstance(properties.get(prop), str):  # "a, b, c" in the registry's properties
        value = [v.strip() for v in properties[prop].split(",") if v.strip()]
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) and value else None


def model_info(version: str, model_id: str, tags: dict[str, Any] | None, properties: dict[str, Any] | None
               ) -> ModelInfo:
    tags = dict(tags or {})
    properties = dict(properties or {})
    meta = _system_metadata(properties, tags)
    defaults = _literal(tags.get("model_specific_defaults")) or {}
    return ModelInfo(
        version=str(version), id=model_id,
        finetune_skus=_sku_list(tags, meta, properties, "finetune_compute_allow_list", "finetuneComputes",
                                "finetuneRecommendedSkus", "finetune-recommended-sku"),
        inference_skus=_sku_list(tags, meta, properties, "inference_compute_allow_list", "inferenceComputes",
                                 "inferenceRecommendedSkus", "inference-recommended-sku"),
        defaults=dict(defaults) if isinstance(defaults, dict) else {},
    )
