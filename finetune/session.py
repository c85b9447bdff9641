"""Opening a spec's target for one command: the backend (or an emulated workspace), its journal and its lock."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from finetune.backends.base import Backend
from finetune.dataprep import state_dir
from finetune.errors import FinetuneError
from finetune.spec.load import LoadedSpec
from finetune.spec.models import TargetKind
from finetune.state import ApplyLock, Journal, LastResult, target_slug


@contextlib.contextmanager
def open_backend(loaded: LoadedSpec, *, emulate: bool = False) -> Iterator[Backend]:
    """The backend for the spec's target; with `emulate`, an Azure ML emulator stands in for the workspace."""
    spec = loaded.spec
    with contextlib.ExitStack() as stack:
        if spec.target.kind is TargetKind.LOCAL:
            if emulate:
                raise FinetuneError("--emulate rehearses the azureml target; this spec targets local",
                                    hint="drop --emulate: the local target already runs on this machine")
            from finetune.backends.local.backend import LocalBackend

            backend: Backend = LocalBackend(loaded)
        else:
            from finetune.backends.azureml.backend import AzureMLBackend
            from finetune.workspace import resolve_workspace

            if emulate:
                workspace = stack.enter_context(_emulated(loaded))
            else:
                workspace = resolve_workspace(spec.target.azureml, loaded.base_dir).require()
            backend = AzureMLBackend(loaded, workspace)
        stack.callback(backend.close)
        yield backend


@contextlib.contextmanager
def _emulated(loaded: LoadedSpec):
    """A persistent in-process emulator under the state folder, so plan/apply/status/destroy share one workspace."""
    from finetune.backends.azureml.client import ClientOptions, default_options
    from finetune.testing import AzureMLEmulator
    from finetune.workspace import WorkspaceRef

    acceleration = float(os.environ.get("FINETUNE_EMULATOR_ACCELERATION", "10000"))
    folder = state_dir(loaded) / "emulator"
    previous = os.environ.get("FINETUNE_POLL_SECONDS")
    os.environ.setdefault("FINETUNE_POLL_SECONDS", "0.05")
    try:
        with AzureMLEmulator(state_dir=folder, acceleration=acceleration) as emu:
            workspace = WorkspaceRef(emu.subscription_id, emu.resource_group, emu.workspace_name, "emulator")
            with default_options(ClientOptions(credential=emu.credential, transport=emu.transport,
                                               polling_interval=0.01)):
                yield workspace
    finally:
        if previous is None:
            os.environ.pop("FINETUNE_POLL_SECONDS", None)


def offline_target(loaded: LoadedSpec) -> tuple[str | None, dict[str, str]]:
    """For a plan that does not read the target: the workspace identity (spec, environment or config.json, when
    fully given) and the plan's `target` block. The workspace is resolved once for both."""
    target = {"kind": loaded.spec.target.kind.value, "mode": "offline"}
    if loaded.spec.target.kind is not TargetKind.AZUREML:
        return None, target
    from finetune.workspace import resolve_workspace

    workspace = resolve_workspace(loaded.spec.target.azureml, loaded.base_dir)
    target["workspace"] = workspace.describe()
    return (workspace.identity if workspace.complete else None), target


def _runs_dir(loaded: LoadedSpec, backend: Backend):
    return state_dir(loaded) / "runs" / target_slug(loaded.spec.metadata.name, backend.target_identity)


def journal_for(loaded: LoadedSpec, backend: Backend) -> Journal:
    return Journal(_runs_dir(loaded, backend) / "journal.jsonl")


def lock_for(loaded: LoadedSpec, backend: Backend, command: str = "apply") -> ApplyLock:
    return ApplyLock(_runs_dir(loaded, backend) / "apply.lock", command)


def last_smoke_test(loaded: LoadedSpec, backend: Backend) -> LastResult:
    """The last smoke test's exchange on this target (written by apply, shown by status, cleared by destroy)."""
    return LastResult(_runs_dir(loaded, backend) / "smoke-test.json")
