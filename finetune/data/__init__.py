"""Dataset preparation: sources -> sampled, chat-checked, hashed and cached JSONL per role.

Importing this package is cheap: datasets/pyarrow/huggingface_hub are imported only when data is read.
"""

from finetune.data.errors import DataError, InvalidRowsError, SourceUnavailableError
from finetune.data.prepare import cache_key, prepare, probe
from finetune.data.request import ROLES, HubSource, LocalSource, PrepareRequest
from finetune.data.result import BadRow, Overlap, PrepareResult, ProbeResult, ProgressEvent, RoleResult
from finetune.data.summary import render_summary

__all__ = [
    "ROLES",
    "BadRow",
    "DataError",
    "HubSource",
    "InvalidRowsError",
    "LocalSource",
    "Overlap",
    "PrepareRequest",
    "PrepareResult",
    "ProbeResult",
    "ProgressEvent",
    "RoleResult",
    "SourceUnavailableError",
    "cache_key",
    "prepare",
    "probe",
    "render_summary",
]
