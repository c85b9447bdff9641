"""Testing helpers for finetune users and developers.

``AzureMLEmulator`` runs the real azure-ai-ml SDK against a faithful, stateful local Azure ML service, in process
or as a server (``python -m finetune.testing.emulator serve``). See ``docs/emulator.md``.
"""

from __future__ import annotations

from .emulator import (
    FAULT_KINDS,
    AzureMLEmulator,
    Durations,
    EmulatorCredential,
    RequestRecord,
    SimClock,
    UnknownHostError,
)

__all__ = [
    "AzureMLEmulator",
    "Durations",
    "EmulatorCredential",
    "FAULT_KINDS",
    "RequestRecord",
    "SimClock",
    "UnknownHostError",
]
