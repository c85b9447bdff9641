"""Azure ML emulator: run the real azure-ai-ml SDK against a stateful local Azure ML service.

See ``docs/emulator.md``. Public names: :class:`AzureMLEmulator`, :class:`EmulatorCredential`,
:class:`Durations`, :class:`EmulatorServer` (server mode), :class:`RequestRecord`.
"""

from __future__ import annotations

from .clock import Durations, SimClock
from .credential import EmulatorCredential
from .emulator import AzureMLEmulator
from .faults import KINDS as FAULT_KINDS
from .requestlog import RequestRecord
from .service import UnknownHostError

__all__ = [
    "AzureMLEmulator",
    "Durations",
    "EmulatorCredential",
    "FAULT_KINDS",
    "RequestRecord",
    "SimClock",
    "UnknownHostError",
]
