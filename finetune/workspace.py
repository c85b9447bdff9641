"""Which Azure ML workspace a spec targets: the spec, then environment variables, then config.json.

Mirrors `MLClient.from_config` (config.json in the current folder, a `.azureml/` subfolder, or any parent) without
importing the SDK, so offline commands can show the target.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from finetune.errors import FinetuneError
from finetune.spec.models import AzureMLWorkspace

ENV_VARS = {"subscription_id": "AZURE_SUBSCRIPTION_ID", "resource_group": "AZURE_RESOURCE_GROUP",
            "workspace": "AZUREML_WORKSPACE_NAME"}


@dataclass(frozen=True)
class WorkspaceRef:
    subscription_id: str | None
    resource_group: str | None
    workspace: str | None
    origin: str  # where the values came from, for the plan header

    @property
    def complete(self) -> bool:
        return bool(self.subscription_id and self.resource_group and self.workspace)

    @property
    def identity(self) -> str:
        return f"{self.subscription_id}/{self.resource_group}/{self.workspace}"

    def describe(self) -> str:
        if not self.complete:
            return "(workspace not set)"
        return f"{self.workspace} (resource group {self.resource_group}, subscription {self.subscription_id})"

    def require(self) -> WorkspaceRef:
        if not self.complete:
            missing = [ENV_VARS[k] for k in ENV_VARS if not getattr(self, k)]
            raise FinetuneError("the Azure ML workspace is not fully specified",
                                hint=f"set target.azureml in the spec, export {', '.join(missing)}, or put a "
                                "config.json (as downloaded from the portal) next to the spec")
        return self


def _find_config(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        for candidate in (folder / "config.json", folder / ".azureml" / "config.json"):
            if candidate.is_file():
                return candidate
    return None


def resolve_workspace(settings: AzureMLWorkspace, spec_dir: Path) -> WorkspaceRef:
    values = {k: getattr(settings, k) for k in ENV_VARS}
    origins = {"spec"} if any(values.values()) else set()
    for key, var in ENV_VARS.items():
        if not values[key] and os.environ.get(var):
            values[key] = os.environ[var]
            origins.add("environment")
    if not all(values.values()):
        config_path = (spec_dir / settings.config_file) if settings.config_file else _find_config(Path.cwd())
        if config_path is not None:
            try:
                config = json.loads(config_path.read_text())
            except (OSError, ValueError) as exc:
                raise FinetuneError(f"cannot read {config_path}: {exc}",
                                    hint="download config.json again from the Azure ML studio") from None
            names = {"subscription_id": "subscription_id", "resource_group": "resource_group",
                     "workspace": "workspace_name"}
            for key, name in names.items():
                if not values[key] and config.get(name):
                    values[key] = config[name]
                    origins.add(str(config_path))
    return WorkspaceRef(origin=", ".join(sorted(origins)) or "not set", **values)
