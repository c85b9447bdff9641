"""Where the local target keeps things under a project's state folder (one place, so nothing else hard-codes it).

    <state>/mlflow.db            tracking + registry (sqlite)      <state>/mlartifacts/   run artifacts, model versions
    <state>/jobs/<key>/          one training job (see trainjob)   <state>/servers/<name>.json (+ .log)  a server
    <state>/plots/<name>.png     loss curves for `finetune status`
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from finetune.backends.local.tracking import sqlite_uri

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file-system-safe name for an address such as `deployment.chat/demo`."""
    return _UNSAFE.sub("_", name).strip("._") or "unnamed"


@dataclass(frozen=True)
class StateLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def tracking_uri(self) -> str:
        return sqlite_uri(self.root / "mlflow.db")

    def job_dir(self, key: str) -> Path:
        """A job's output dir; key it by the job's fingerprint so a changed spec never resumes the wrong job."""
        return self.root / "jobs" / safe_name(key)

    def server_state(self, name: str) -> Path:
        return self.root / "servers" / f"{safe_name(name)}.json"

    def plot_path(self, name: str) -> Path:
        return self.root / "plots" / f"{safe_name(name)}.png"
