"""The published JSON Schema of the spec format, generated from the pydantic models."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_ID = "https://finetune.dev/schemas/finetune-v1.schema.json"
SCHEMA_FILE = "finetune-v1.schema.json"


def spec_json_schema() -> dict[str, Any]:
    from finetune.spec.models import Spec

    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "finetune spec (apiVersion finetune/v1, kind FineTune)", **schema}


def spec_json_schema_text() -> str:
    return json.dumps(spec_json_schema(), indent=2, sort_keys=False) + "\n"
