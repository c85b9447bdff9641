"""The Azure ML target: resolve, observe, preflight and apply through azure-ai-ml.

Only this package imports the SDK (lazily). All clients come from `client.py`, the one factory.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from finetune import catalog
from finetune.backends import lossplot
from finetune.backends.azureml import observe as obs
from finetune.backends.azureml.client import (
    ClientOptions,
    make_registry_client,
    make_workspace_client,
    resolve_credential,
)
from finetune.backends.azureml.errors import call
from finetune.backends.azureml.metrics import MetricsPoller, MetricsUnavailable, WorkspaceMetrics
from finetune.backends.azureml.modelinfo import ModelInfo, model_info
from finetune.backends.azureml.resolve import registry_asset
from finetune.backends.base import RunsFound, StepContext, registered_model
from finetune.backends.shared_reads import read_once
from finetune.dataprep import state_dir
from finetune.errors import Diagnostic, Diagnostics, FinetuneError
from finetune.graph import FORMAT_TAGS, UNKNOWN, Graph, ResolvedFacts, Resource, is_known, training_inputs
from finetune.invoke import parse_response, sample_request
from finetune.plan.model import Action, Change, Observed
from finetune.spec.load import LoadedSpec
from finetune.workspace import WorkspaceRef

PROVISIONING_DONE = {"succeeded", "failed", "canceled"}
RESERVE = 1.2  # managed deployments reserve ~20% extra cores for upgrades
PIPELINE_BUILD = threading.Lock()
INVOKE_HEADERS = threading.Lock()  # see invoke(): the SDK's scoring headers are shared by the process
FINAL_METRICS_WAIT = 3.0  # seconds apply waits, once the job is done, for its last metrics read


def poll_seconds() -> float:
    return float(os.environ.get("FINETUNE_POLL_SECONDS", "10"))


def quiet_sdk_logs() -> None:
    """The SDK logs experimental-class notices and progress at WARNING/INFO; keep them out of the user's output."""
    import logging

    if not os.environ.get("FINETUNE_DEBUG"):
        for name in ("azure", "azure.ai.ml", "azure.core", "azure.identity"):
            logger = logging.getLogger(name)
            if logger.level != logging.ERROR:  # setLevel clears every logger's cache: once a process, not a spec
                logger.setLevel(logging.ERROR)
    _quiet_sdk_polling()


def _quiet_sdk_polling() -> None:
    """The SDK's AzureMLPolling prints a "." to stdout on every long-running-operation poll, which would corrupt
    `--json` and prefix progress lines; finetune reports progress itself, so the poll only updates the status."""
    try:
        from azure.ai.ml._utils._azureml_polling import AzureMLPolling
        from azure.mgmt.core.polling.arm_polling import ARMPolling
    except ImportError:  # a future SDK without it prints nothing to silence
        return
    AzureMLPolling.update_status = ARMPolling.update_status


class AzureMLBackend:
    def __init__(self, loaded: LoadedSpec, workspace: WorkspaceRef, options: ClientOptions | None = None) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.workspace = workspace.require()
        self.options = options  # None: the factory's defaults (real credential, or an injected transport)
        self.target_identity = f"azureml:{workspace.identity}"
        self.workspace_identity = workspace.identity
        self._ws = None
        self._registries: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._registry_lock = threading.Lock()
        self.model: ModelInfo | None = None
        self.component: Any = None
        self.sizes: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="azureml")
        self._prefetched: dict[str, tuple[tuple, Future]] = {}
        self._usage_future: Future | None = None
        self._resolving: dict[str, Future] = {}
        self._jobs_future: Future | None = None
        self._models_future: Future | None = None
        self._deployments_future: Future | None = None
        self.metrics = WorkspaceMetrics(self._tracking_uri, lambda: resolve_credential(self.options))
        quiet_sdk_logs()

    # ---- clients --------------------------------------------------------------------------------------------------
    @property
    def ws(self):
        with self._lock:
            return self._workspace_client()

    def _workspace_client(self):
        if self._ws is None:
            ref = self.workspace
            self._ws = make_workspace_client(ref.subscription_id, ref.resource_group, ref.workspace,
                                             options=self.options)
        return self._ws

    def registry(self, name: str):
        with self._registry_lock:  # model and component are resolved concurrently from the same registry
            if name not in self._registries:
                self._registries[name] = call(lambda: make_registry_client(name, options=self.options),
                                              f"connect to registry {name}")
            return self._registries[name]

    def _tracking_uri(self) -> str | None:
        """The workspace's MLflow tracking URI as the service reports it (private-link workspaces differ)."""
        name = self.workspace.workspace
        return call(lambda: self.ws.workspaces.get(name), f"read workspace {name}").mlflow_tracking_uri

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._ws = None
        self._registries.clear()

    def target_info(self) -> dict[str, Any]:
        info = {"kind": "azureml", "mode": "online", "identity": self.target_identity,
                "workspace": self.workspace.describe()}
        if self.workspace.origin == "emulator":  # `plan --emulate --out`: the saved plan says it is a rehearsal
            info["emulated"] = True
        return info

    def status_extra(self, graph: Graph, observed: dict[str, Observed | None]) -> dict[str, Any]:
        """The training job's metrics from MLflow: latest values, evaluation scores, the loss curve (PNG and text).
        Unreadable metrics are one warning; status goes on."""
        job = observed.get("job.finetune")
        if job is None or not job.exists or not job.details.get("name"):
            return {}
        name = job.details["name"]
        experiment = job.details.get("experiment") or graph.resources["job.finetune"].desired["experiment"]
        try:
            found = self.metrics.read(name, experiment, history=True)
        except MetricsUnavailable as exc:
            return {"warnings": [f"job.finetune: metrics cannot be read from the workspace's MLflow tracking "
                                 f"({exc})"]}
        extra: dict[str, Any] = {"metrics": found.to_dict()}
        series = lossplot.loss_series(found.history)
        if series:
            extra["loss_plot"] = lossplot.ascii_plot(series, ascii_only=True).splitlines()
            try:
                png = state_dir(self.loaded) / "azureml" / name / "loss.png"
                extra["loss_png"] = str(lossplot.write_png(series, png, title=f"{name} loss"))
            except (OSError, FinetuneError) as exc:
                extra["warnings"] = [f"job.finetune: the loss curve PNG could not be written ({exc})"]
        return extra

    def tags(self, resource: Resource, **extra: str) -> dict[str, str]:
        return {FORMAT_TAGS["spec"]: self.spec.metadata.name, FORMAT_TAGS["address"]: resource.address,
                FORMAT_TAGS["fingerprint"]: resource.fingerprint, **extra}

    # ---- resolve --------------------------------------------------------------------------------------------------
    def _resolution(self) -> dict[str, Future]:
        """Reads that resolve floating references; started once, by prefetch or by resolve."""
        if self._resolving:
            return self._resolving
        model, component = self.spec.model, self.spec.finetune.component

        def get_model():
            client = self.registry(model.registry) if model.registry else self.ws
            key = (id(client), "model", model.name, model.version, model.label)
            if not model.registry:
                if model.version:
                    return read_once(key, lambda: call(lambda: client.models.get(model.name, version=model.version),
                                                       f"model {model.name} version {model.version}"))
                return read_once(key, lambda: call(
                    lambda: client.models.get(model.name, label=model.label or "latest"),
                    f"model {model.name} label {model.label or 'latest'}"))
            return read_once(key, lambda: registry_asset(client, "model", model.registry, model.name,
                                                         version=model.version, label=model.label))

        def get_component():
            client = self.registry(component.registry)
            key = (id(client), "component", component.name, component.version, component.label)
            return read_once(key, lambda: registry_asset(client, "component", component.registry, component.name,
                                                         version=component.version, label=component.label))

        def get_sizes():
            sizes = read_once((id(self.ws), "vm sizes"), lambda: call(lambda: list(self.ws.compute.list_sizes()),
                                                                       "list VM sizes"))
            return {s.name.lower(): s for s in sizes}

        self._resolving = {"model": self._pool.submit(get_model), "component": self._pool.submit(get_component),
                           "sizes": self._pool.submit(get_sizes)}
        return self._resolving

    def resolve(self, loaded: LoadedSpec, facts: ResolvedFacts) -> tuple[ResolvedFacts, list[Diagnostic]]:
        spec = self.spec
        model = spec.model
        futures = self._resolution()
        errors = []
        results = {}
        for key, future in futures.items():
            try:
                results[key] = future.result()
            except FinetuneError as exc:
                errors.extend(exc.diagnostics)
        if errors:
            raise FinetuneError(errors)
        found = results["model"]
        self.model = model_info(found.version, found.id, found.tags, found.properties)
        self.component = results["component"]
        self.sizes = results["sizes"]
        gpus = None
        if spec.compute is not None and spec.compute.sku.lower() in self.sizes:
            gpus = int(self.sizes[spec.compute.sku.lower()].gpus or 0) or None
        facts = replace(facts, model_version=self.model.version, model_id=self.model.id,
                        model_defaults=self.model.defaults,
                        model_defaults_origin=f"registry tags of {model.name} v{self.model.version}",
                        component_version=str(self.component.version), gpus_per_node=gpus)
        return facts, []

    # ---- observe --------------------------------------------------------------------------------------------------
    READERS = {"compute": obs.observe_compute, "data": obs.observe_data, "model": obs.observe_model,
               "endpoint": obs.observe_endpoint}
    # What can be read before floating references are resolved: the fields that name each resource.
    IDENTITY = {"compute": ("name",), "data": ("name", "version"), "endpoint": ("name",)}

    def _read(self, resource: Resource) -> Future:
        return self._pool.submit(self.READERS[resource.kind], self.ws, resource, self.spec.metadata.name)

    def prefetch(self, graph: Graph) -> None:
        """Start reading what does not depend on resolution (and the quota), so reads overlap with resolve."""
        self._resolution()
        name = self.spec.metadata.name
        self._jobs_future = self._pool.submit(obs.list_spec_jobs, self.ws, name)
        for resource in graph.resources.values():
            if resource.kind == "model":
                self._models_future = self._pool.submit(obs.list_model_versions, self.ws, resource.name)
            identity = self._identity(resource)
            if identity is not None and resource.desired.get("type") != "local file" and is_known(identity):
                self._prefetched[resource.address] = (identity, self._read(resource))
            if resource.kind == "endpoint" and is_known(resource.name):
                self._deployments_future = self._pool.submit(obs.list_deployments, self.ws, resource.name, name)
        self._usage()  # starts the quota read

    def _identity(self, resource: Resource) -> tuple | None:
        keys = self.IDENTITY.get(resource.kind)
        return None if keys is None else tuple(resource.desired.get(k) for k in keys)

    def _observe_deployments(self, graph: Graph) -> dict[str, Observed | None]:
        """Desired deployments by name, plus this spec's deployments the graph no longer has (to be removed)."""
        endpoint = next((r for r in graph.resources.values() if r.kind == "endpoint"), None)
        if endpoint is None:
            return {}
        if self._deployments_future is None:
            self._deployments_future = self._pool.submit(obs.list_deployments, self.ws, endpoint.name,
                                                         self.spec.metadata.name)
        existing = dict(self._deployments_future.result())
        result: dict[str, Observed | None] = {}
        for resource in graph.resources.values():
            if resource.kind == "deployment":
                result[resource.address] = existing.pop(str(resource.desired["name"]).lower(), None)
        for current in existing.values():
            if current.managed:  # ours, but no longer wanted (removed from the spec, or replaced by a rollout)
                result[f"retire.{self.spec.endpoint.name}/{current.properties['name']}"] = current
        return result

    def _job_from_list(self, resource: Resource) -> Observed | None:
        """This fingerprint's attempts from the prefetched list (apply re-reads by name before ever submitting)."""
        if self._jobs_future is None:
            self._jobs_future = self._pool.submit(obs.list_spec_jobs, self.ws, self.spec.metadata.name)
        jobs = self._jobs_future.result()
        if resource.fingerprint == UNKNOWN:
            return obs.previous_run(jobs)
        return obs.observe_attempts(jobs, resource, self.spec.metadata.name, self._base_job_name(resource))

    def _base_job_name(self, resource: Resource) -> str:
        from finetune.graph import job_name

        return job_name(self.spec, resource.fingerprint)

    def training_facts(self, graph: Graph, facts: ResolvedFacts, data_files: dict[str, str], *, measure: bool,
                       say: Callable[[str], None]) -> ResolvedFacts:
        """The estimate comes from the catalog (model size, the SKU's GPUs); nothing to measure or add here."""
        return facts

    def observe(self, graph: Graph, data_files: dict[str, str]) -> dict[str, Observed | None]:
        futures: dict[str, Future] = {}
        for resource in graph.resources.values():
            if resource.kind == "job":
                futures[resource.address] = self._pool.submit(self._job_from_list, resource)
                continue
            if resource.kind not in self.READERS or resource.desired.get("type") == "local file":
                continue
            early = self._prefetched.get(resource.address)
            if early is not None and early[0] == self._identity(resource):
                futures[resource.address] = early[1]
            elif resource.kind == "model" and self._models_future is not None:
                futures[resource.address] = self._pool.submit(
                    obs.observe_model, self.ws, resource, self.spec.metadata.name, self._models_future.result())
            else:
                futures[resource.address] = self._read(resource)
        observed: dict[str, Observed | None] = {a: f.result() for a, f in futures.items()}
        observed.update(self._observe_deployments(graph))
        for resource in graph.resources.values():
            endpoint = observed.get(f"endpoint.{self.spec.endpoint.name}") if self.spec.endpoint else None
            if resource.kind == "traffic":
                observed[resource.address] = obs.observe_traffic(endpoint, resource)
            elif resource.kind == "smoke_test":
                observed[resource.address] = obs.observe_smoke_test(endpoint, resource)
            elif resource.address == "data.sample":
                observed[resource.address] = Observed(True, dict(resource.desired)) if resource.desired[
                    "sha256"] != UNKNOWN else None
        return observed

    # ---- preflight ------------------------------------------------------------------------------------------------
    def preflight(self, graph: Graph, observed: dict[str, Observed | None]) -> list[Diagnostic]:
        """Checks of the graph's desired state against what the workspace and registry said (sizes, allow lists,
        quota, names, component inputs)."""
        found = Diagnostics()
        job = graph.resources["job.finetune"]
        model = obs.model_ref(str(job.desired["model"])) or str(job.desired["model"])
        for resource in graph.resources.values():
            current = observed.get(resource.address)
            absent = current is None or not current.exists
            if resource.kind == "compute":
                self._preflight_compute(resource, model, absent, found)
            elif resource.kind == "deployment":
                sku_name = str(resource.desired["sku"] or "")
                allow = self.model.inference_skus if self.model else None
                if allow is not None and sku_name.lower() not in {s.lower() for s in allow}:
                    found.error(f"{sku_name} is not in {model}'s inference allow list", address=resource.address,
                                hint=_usable_hint(allow, managed_online=True))
                sku = catalog.find_sku(sku_name)
                if absent:
                    self._quota(sku_name, int(resource.desired["instance_count"]),
                                1.0 if sku and sku.skip_reservation else RESERVE, resource.address, found)
            elif resource.kind == "endpoint" and not absent and not current.managed:
                found.error(f"endpoint name {resource.name} is taken by an endpoint this spec does not manage",
                            address=resource.address, hint="set endpoint.unique_suffix: true or choose another name")
        inputs = set(self.component.inputs or {}) if self.component is not None else set()
        for name in job.desired["parameters"]:
            if inputs and name not in inputs:
                found.error(f"parameter '{name}' is not an input of {job.desired['component']}",
                            address=job.address, hint="remove it")
        return found.items

    def _preflight_compute(self, resource: Resource, model: str, absent: bool, found: Diagnostics) -> None:
        d = resource.desired
        size = self.sizes.get(str(d["size"]).lower())
        if size is None:
            found.error(f"{d['size']} is not offered in this workspace's region", address=resource.address,
                        hint="pick a size that `az ml compute list-sizes` shows, or use a workspace in another "
                        "region")
        elif not size.gpus:
            found.error(f"{d['size']} has no GPUs in this region", address=resource.address,
                        hint="use a GPU size such as Standard_NC24ads_A100_v4")
        allow = self.model.finetune_skus if self.model else None
        if allow is not None and str(d["size"]).lower() not in {s.lower() for s in allow}:
            found.error(f"{d['size']} is not in {model}'s fine-tune allow list", address="job.finetune",
                        hint=_usable_hint(allow))
        elif allow is None:
            found.warning(f"{model} publishes no fine-tune allow list; checked against the offline catalog only",
                          address="job.finetune")
        if absent:
            self._quota(str(d["size"]), int(d["max_instances"]), 1.0, resource.address, found)

    def _quota(self, sku_name: str, count: int, reserve: float, address: str, found: Diagnostics) -> None:
        size = self.sizes.get(sku_name.lower())
        sku = catalog.find_sku(sku_name)
        vcpus = obs.vm_vcpus(size) or (sku.vcpus if sku else None)
        family = getattr(size, "family", None) or (sku.family if sku else None)
        if not vcpus or not family:
            return
        need = int(vcpus * count * reserve + 0.999)
        usage = self._usage().get(family.lower().replace(" ", ""))
        if usage is None:
            return
        used, limit = usage
        if used + need > limit:
            found.error(f"{sku_name} x {count} needs {need} vCPUs of {family} quota; {limit - used} of {limit} are "
                        "free", address=address, hint="request more quota for this VM family (Azure portal > "
                        "Quotas), lower the instance count, or pick another SKU")

    def _usage(self) -> dict[str, tuple[int, int]]:
        if self._usage_future is None:
            self._usage_future = self._pool.submit(self._read_usage)
        return self._usage_future.result()

    def _read_usage(self) -> dict[str, tuple[int, int]]:
        table = {}
        usages = read_once((id(self.ws), "quota usage"), lambda: call(lambda: list(self.ws.compute.list_usage()),
                                                                        "list quota usage"), live=True)
        for usage in usages:
            # The family name is a dict, a UsageName-like object or a string, depending on the SDK version.
            name = usage.name.get("value") if isinstance(usage.name, dict) else getattr(usage.name, "value", None) \
                or str(usage.name)
            current = usage.current_value if usage.current_value is not None else getattr(usage, "currentValue", 0)
            table[(name or "").lower().replace(" ", "")] = (int(current or 0), int(usage.limit or 0))
        return table

    # ---- apply ----------------------------------------------------------------------------------------------------
    def apply(self, change: Change, ctx: StepContext) -> dict[str, Any]:
        if change.action is Action.NOOP:
            return self._outputs_of(change, ctx)
        if change.action is Action.DELETE:
            self.destroy(change.address, ctx.observed[change.address], ctx)
            return {}
        resource = ctx.graph.resources[change.address]
        step = getattr(self, f"_apply_{resource.kind}")
        return step(resource, change, ctx) or {}

    def _outputs_of(self, change: Change, ctx: StepContext) -> dict[str, Any]:
        current = ctx.observed.get(change.address)
        if current is None:
            return {}
        keep = ("name", "id", "scoring_uri", "studio_url")
        return {**current.properties, **{k: v for k, v in current.details.items() if k in keep}}

    def _wait_lro(self, poller, ctx: StepContext, what: str) -> Any:
        """Wait on a long-running operation. Its status polls are retried by the client's policy (client.py); what
        the poller raises once that gives up (from status, wait or result) becomes the same one-line diagnosis."""
        last = None
        while not call(poller.done, what):
            ctx.check_cancelled()
            status = call(poller.status, what)
            if status != last:
                ctx.report(f"{what}: {status}")
                last = status
            call(lambda: poller.wait(timeout=min(poll_seconds(), 5)), what)
        return call(poller.result, what)

    def _apply_compute(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from azure.ai.ml.entities import AmlCompute

        d = resource.desired
        if change.action is Action.REPLACE:
            self.destroy(resource.address, ctx.observed[resource.address], ctx)
        compute = AmlCompute(name=d["name"], size=d["size"], tier=d["tier"], min_instances=d["min_instances"],
                             max_instances=d["max_instances"],
                             idle_time_before_scale_down=d["idle_time_before_scale_down"], tags=self.tags(resource))
        if change.action is Action.READ:
            return self._wait_provisioned(lambda: self.ws.compute.get(d["name"]), ctx, f"compute {d['name']}")
        poller = call(lambda: self.ws.compute.begin_create_or_update(compute), f"create compute {d['name']}")
        ctx.record("submitted", {"compute": d["name"]})
        result = self._wait_lro(poller, ctx, f"compute {d['name']}")
        if result is not None and (result.provisioning_state or "").lower() == "failed":
            raise FinetuneError(f"compute {d['name']} failed to provision", hint="check quota and the SKU's "
                                "availability in the region")
        return {"name": d["name"]}

    def _wait_provisioned(self, get, ctx: StepContext, what: str) -> dict[str, Any]:
        last = None
        while True:
            ctx.check_cancelled()
            current = call(get, f"read {what}")
            state = (current.provisioning_state or "").lower()
            if state != last:
                ctx.report(f"{what}: {obs.state_name(current.provisioning_state)}")
                last = state
            if state in PROVISIONING_DONE:
                if state != "succeeded":
                    raise FinetuneError(f"{what} ended {obs.state_name(current.provisioning_state)}")
                return {"name": current.name}
            time.sleep(min(poll_seconds(), 5))

    def _apply_data(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        role = resource.address.split(".", 1)[1]
        d = resource.desired
        if change.action is Action.UPDATE:  # archived by `destroy --all`; same content: restore it
            call(lambda: self.ws.data.restore(name=d["name"], version=d["version"]),
                 f"restore data {d['name']}:{d['version']}")
            return {"name": d["name"], "version": d["version"]}
        path = ctx.data_files.get(role)
        if not path:
            raise FinetuneError(f"prepared {role} data is missing", hint="run `finetune data prepare SPEC`")
        asset = Data(name=d["name"], version=d["version"], path=path, type=AssetTypes.URI_FILE,
                     description=f"{role} split prepared by finetune ({d['source']})",
                     tags=self.tags(resource, **{"finetune.sha256": d["sha256"]}))
        created = call(lambda: self.ws.data.create_or_update(asset), f"upload data {d['name']}:{d['version']}")
        return {"name": created.name, "version": created.version}

    def _apply_job(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        """Submit this attempt under its deterministic name, unless it exists already (another apply, on this
        machine or another, submitted it since the plan): then wait on that one. A job is never submitted twice."""
        name = resource.desired["name"]
        if change.action is Action.READ:  # the running attempt as observed (older versions named retries otherwise)
            current = ctx.observed.get(resource.address)
            name = current.details.get("name", name) if current is not None else name
        else:
            existing = obs.read_job(self.ws, name)
            if existing is None:
                # The SDK's pipeline DSL keeps its building state in globals: two threads building at once (specs
                # of one folder) mix their nodes up, so building and submitting take turns within the process.
                with PIPELINE_BUILD:
                    job = self._pipeline_job(resource, ctx)
                    ctx.record("submitting", {"job": name})
                    submitted = call(lambda: self.ws.jobs.create_or_update(job, experiment_name=resource.desired[
                        "experiment"]), f"submit fine-tuning job {name}")
                ctx.record("submitted", {"job": submitted.name, "studio_url": getattr(submitted, "studio_url", None)})
            else:
                ctx.report(f"job {name} was submitted by another apply since the plan: waiting on it")
        if ctx.detach:
            job = call(lambda: self.ws.jobs.get(name), f"read job {name}")
            status = obs.job_status(job)
            if status not in obs.JOB_DONE:
                return {"name": name, "status": status, "studio_url": getattr(job, "studio_url", None),
                        "detached": True}
        return self._wait_job(name, ctx)

    def _wait_job(self, name: str, ctx: StepContext) -> dict[str, Any]:
        """Poll the job until it ends. Its metrics are read alongside (MLflow, in the background, at most one read per
        job poll): the progress line shows the latest step, epoch and loss without the reads ever delaying a poll."""
        last = None
        poller = None
        told = False
        while True:
            ctx.check_cancelled()
            job = call(lambda: self.ws.jobs.get(name), f"read job {name}")
            status = obs.job_status(job)
            if poller is None:
                poller = MetricsPoller(self.metrics, name, job.experiment_name or "Default")
            latest = poller.latest
            if status in obs.JOB_DONE:
                latest = poller.finish(FINAL_METRICS_WAIT)
            elif status in ("Running", "Finalizing"):  # the steps' runs exist once the job runs
                latest = poller.poll()
            if poller.error and not told:
                ctx.report(f"job {name}: metrics unavailable ({poller.error}); training goes on")
                told = True
            progress = latest.progress_text() if latest is not None else ""
            shown = status + (f", {progress}" if progress else "")
            if shown != last:
                ctx.report(f"job {name}: {shown}")
                last = shown
            if status == "Completed":
                out = {"name": name, "studio_url": getattr(job, "studio_url", None)}
                if latest is not None:
                    out["metrics"] = {k: v for k, v in latest.to_dict().items() if k in ("latest", "final",
                                                                                       "evaluation")}
                if poller.error:
                    out["metrics_unavailable"] = poller.error
                return out
            if status in obs.JOB_DONE:
                error = self._job_error(name)
                raise FinetuneError(f"fine-tuning job {name} ended {status}{': ' + error if error else ''}",
                                    hint=f"see the job's logs in Azure ML studio ({getattr(job, 'studio_url', '')}); "
                                    "fix the cause, then apply again (a failed job is not reused)")
            time.sleep(poll_seconds())

    def _job_error(self, name: str) -> str:
        """The service's error message for a finished job: `jobs.stream` raises it (its log output is discarded)."""
        import contextlib
        import io

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.ws.jobs.stream(name)
        except Exception as exc:  # noqa: BLE001 - the SDK raises JobException carrying the error document
            text = str(getattr(exc, "message", "") or exc)
            start = text.find("{")
            try:
                return json.loads(text[start:])["error"]["message"]
            except (ValueError, KeyError, TypeError):
                return " ".join(text.split())[:300]
        return ""

    def _pipeline_job(self, resource: Resource, ctx: StepContext):
        from azure.ai.ml import Input
        from azure.ai.ml.dsl import pipeline

        d = resource.desired
        params = {k: v for k, v in d["parameters"].items()}
        cluster = d["compute"]
        inputs = {}
        for role in ("train", "validation", "test"):
            if role in d["data"]:
                asset = ctx.graph.resources[f"data.{role}"].desired
                inputs[f"{role}_file_path"] = Input(type="uri_file", path=f"azureml:{asset['name']}:{asset['version']}")
        component = self.component

        @pipeline(name=d["display_name"], description=f"finetune {self.spec.metadata.name}")
        def finetune_pipeline():
            node = component(mlflow_model_path=self.model.id, compute_model_import=cluster,
                             compute_preprocess=cluster, compute_finetune=cluster, compute_model_evaluation=cluster,
                             **inputs, **params)
            return {"trained_model": node.outputs.mlflow_model_folder}

        job = finetune_pipeline()
        job.name = d["name"]
        job.display_name = d["display_name"]
        job.experiment_name = d["experiment"]
        job.tags = self.tags(resource, **{obs.ATTEMPT_TAG: str(d["attempt"])})
        job.properties = {**(job.properties or {}), obs.INPUTS_PROPERTY: json.dumps(training_inputs(d),
                                                                                   sort_keys=True)}
        job.settings.force_rerun = d["force_rerun"]
        job.settings.continue_on_step_failure = d["continue_on_step_failure"]
        return job

    def _apply_model(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        """One model version per training run, however many applies race: adopt a version registered from this
        run (by its fingerprint tag) since the plan; after registering, if a concurrent apply registered another,
        the oldest wins and ours is archived."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        mine = obs.registered_from(obs.list_model_versions(self.ws, resource.name), resource.fingerprint)
        if mine:
            ctx.report(f"version {mine[0].version} was registered from this run by another apply: adopted")
            return {"name": resource.name, "version": str(mine[0].version), "id": mine[0].id}
        job = ctx.outputs.get("job.finetune", {}).get("name") or resource.desired["job"]
        version = resource.desired["version"]
        if version == UNKNOWN:
            version = self._next_model_version(resource.name)
        model = Model(path=f"azureml://jobs/{job}/outputs/trained_model", type=AssetTypes.MLFLOW_MODEL,
                      name=resource.name, version=version, description=resource.desired.get("description"),
                      tags=self.tags(resource, **{"finetune.job": job}))
        created = call(lambda: self.ws.models.create_or_update(model), f"register model {resource.name}:{version}")
        winner = obs.registered_from(obs.list_model_versions(self.ws, resource.name), resource.fingerprint)
        if winner and str(winner[0].version) != str(created.version):
            call(lambda: self.ws.models.archive(name=resource.name, version=created.version),
                 f"archive duplicate model {resource.name}:{created.version}")
            ctx.report(f"another apply registered version {winner[0].version} from this run first: adopted it")
            return {"name": resource.name, "version": str(winner[0].version), "id": winner[0].id}
        return {"name": created.name, "version": str(created.version), "id": created.id}

    def _next_model_version(self, name: str) -> str:
        """The next integer version. Archived versions still hold their numbers, so all versions count."""
        from azure.ai.ml.constants import ListViewType

        try:
            versions = call(lambda: [m.version for m in self.ws.models.list(name=name,
                                                                            list_view_type=ListViewType.ALL)],
                            f"list model {name}")
        except FinetuneError as exc:
            if obs.is_not_found(exc.__cause__ or exc):
                return "1"
            raise
        numbers = [int(v) for v in versions if str(v).isdigit()]
        return str(max(numbers, default=0) + 1)

    def _apply_endpoint(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        d = resource.desired
        if change.action is Action.READ:
            return self._wait_provisioned(lambda: self.ws.online_endpoints.get(d["name"]), ctx, f"endpoint "
                                          f"{d['name']}")
        current = ctx.observed.get(resource.address)
        if change.action is Action.REPLACE:
            # Deleting the endpoint deletes its deployments; the plan re-creates them, then routes traffic.
            self.destroy(resource.address, current, ctx)
            current = None
        tags = {**(current.details.get("tags", {}) if current else {}), **self.tags(resource)}
        endpoint = ManagedOnlineEndpoint(name=d["name"], auth_mode=d["auth_mode"], description=d["description"],
                                         tags=tags)
        if current is not None and current.exists:  # an update in place keeps the traffic it has
            endpoint.traffic = current.details.get("traffic") or {}
        poller = call(lambda: self.ws.online_endpoints.begin_create_or_update(endpoint), f"create endpoint "
                      f"{d['name']}")
        ctx.record("submitted", {"endpoint": d["name"]})
        created = self._wait_lro(poller, ctx, f"endpoint {d['name']}")
        return {"name": d["name"], "auth_mode": d["auth_mode"], "scoring_uri": getattr(created, "scoring_uri", None)}

    def _apply_deployment(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from azure.ai.ml.entities import ManagedOnlineDeployment, OnlineRequestSettings, ProbeSettings

        d = resource.desired
        version = registered_model(ctx.outputs).get("version")
        model_name = d["model"].split("@")[0]
        if not version:
            raise FinetuneError(f"no registered version of {model_name} to deploy")
        probe = d["liveness_probe"]
        deployment = ManagedOnlineDeployment(
            name=d["name"], endpoint_name=d["endpoint"], model=f"azureml:{model_name}:{version}",
            instance_type=d["sku"], instance_count=d["instance_count"],
            liveness_probe=ProbeSettings(**probe),
            request_settings=OnlineRequestSettings(request_timeout_ms=d["request_timeout_ms"],
                                                   max_concurrent_requests_per_instance=d[
                                                       "max_concurrent_requests_per_instance"]),
            tags=self.tags(resource))
        if change.action is Action.READ:
            return self._wait_provisioned(lambda: self.ws.online_deployments.get(d["name"], endpoint_name=d[
                "endpoint"]), ctx, f"deployment {d['endpoint']}/{d['name']}")
        if change.action is Action.REPLACE:
            current = obs.list_deployments(self.ws, d["endpoint"], self.spec.metadata.name).get(d["name"].lower())
            if current is not None:  # a failed one is deleted first; inside a replaced endpoint it is gone already
                self.destroy(resource.address, current, ctx)
        poller = call(lambda: self.ws.online_deployments.begin_create_or_update(deployment),
                      f"deploy {d['endpoint']}/{d['name']}")
        ctx.record("submitted", {"deployment": f"{d['endpoint']}/{d['name']}"})
        try:
            self._wait_lro(poller, ctx, f"deployment {d['name']}")
        except FinetuneError as exc:
            from finetune.backends.azureml.errors import is_transient

            if exc.__cause__ is not None and is_transient(exc.__cause__):
                raise  # the service kept failing (already diagnosed); the deployment itself did not fail
            logs = self._logs(d)
            first = exc.diagnostics[0]
            delay = (probe or {}).get("initial_delay")
            raise FinetuneError(first.message + (f"; last log lines: {logs}" if logs else ""),
                                hint="raise liveness_probe.initial_delay in the spec" +
                                (f", now {delay} s" if delay is not None else "") +
                                ": large models load slowly; or choose a larger instance type") from exc
        return {"name": d["name"], "model": f"{model_name}@{version}", "sku": d["sku"],
                "instance_count": d["instance_count"]}

    def _logs(self, d: dict[str, Any]) -> str:
        """The tail of the deployment's container log, on one line (a diagnosis aid: empty if unreadable)."""
        try:
            text = self.ws.online_deployments.get_logs(d["name"], d["endpoint"], lines=5)
        except Exception:  # noqa: BLE001 - logs are a diagnosis aid; never mask the real failure
            return ""
        return " | ".join(" ".join(line.split()) for line in str(text).splitlines()[-5:] if line.strip())[:600]

    def _apply_traffic(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        name = resource.desired["endpoint"]
        endpoint = call(lambda: self.ws.online_endpoints.get(name), f"read endpoint {name}")
        endpoint.traffic = dict(resource.desired["traffic"])
        endpoint.tags = {**(endpoint.tags or {}), obs.TRAFFIC_TAG: resource.fingerprint}
        poller = call(lambda: self.ws.online_endpoints.begin_create_or_update(endpoint), f"route traffic on {name}")
        self._wait_lro(poller, ctx, f"traffic {name}")
        return {"traffic": dict(resource.desired["traffic"])}

    def _apply_smoke_test(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        d = resource.desired
        request = sample_request(ctx.data_files.get("sample") or ctx.data_files.get("test"), d["row"], d["seed"],
                                 d["parameters"])
        ctx.report(f"asking: {request.question[:200]}")
        answer = self.invoke(d["endpoint"], d["deployment"], request.body())
        endpoint = call(lambda: self.ws.online_endpoints.get(d["endpoint"]), f"read endpoint {d['endpoint']}")
        endpoint.tags = {**(endpoint.tags or {}), obs.SMOKE_TAG: resource.fingerprint}
        poller = call(lambda: self.ws.online_endpoints.begin_create_or_update(endpoint), "record smoke test")
        self._wait_lro(poller, ctx, "record smoke test")
        return {"question": request.question, "expected": request.expected, "answer": answer,
                "parameters": request.parameters}

    def invoke(self, endpoint: str, deployment: str | None, body: dict[str, Any]) -> str:
        from azure.ai.ml.constants._endpoint import EndpointInvokeFields

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "request.json"
            path.write_text(json.dumps(body))
            # azure-ai-ml 1.35 writes the key and the deployment header into one class-level dict
            # (EndpointInvokeFields.DEFAULT_HEADER) and never clears it: a later invoke in this process (another spec
            # of a folder, a smoke test then `invoke`) would go to the earlier deployment. Each call gets a fresh
            # dict, one call at a time, and the key does not outlive it.
            with INVOKE_HEADERS:
                EndpointInvokeFields.DEFAULT_HEADER = {"Content-Type": "application/json"}
                try:
                    raw = call(lambda: self.ws.online_endpoints.invoke(
                        endpoint_name=endpoint, deployment_name=deployment, request_file=str(path)),
                        f"invoke {endpoint}" + (f"/{deployment}" if deployment else ""))
                finally:
                    EndpointInvokeFields.DEFAULT_HEADER = {"Content-Type": "application/json"}
        return parse_response(raw)

    def where(self, outputs: dict[str, dict[str, Any]]) -> list[str]:
        """Where the results of an apply live, for the closing summary."""
        lines = []
        model = registered_model(outputs)
        if model:
            lines.append(f"model:    {model['name']} version {model['version']} in workspace "
                         f"{self.workspace.workspace}")
        job = outputs.get("job.finetune") or {}
        if job.get("name"):
            lines.append(f"job:      {job['name']}" + (f" ({job['studio_url']})" if job.get("studio_url") else ""))
            lines.append("metrics:  MLflow on the workspace's tracking URI, the job's child runs (`finetune status` "
                         "draws the loss curve)")
        endpoint = next((o for a, o in outputs.items() if a.startswith("endpoint.") and o.get("name")), None)
        if endpoint:
            lines.append(f"endpoint: {endpoint['name']}" + (f" ({endpoint['scoring_uri']})"
                                                           if endpoint.get("scoring_uri") else ""))
        return lines

    # ---- destroy --------------------------------------------------------------------------------------------------
    def destroy(self, address: str, observed: Observed, ctx: StepContext) -> None:
        kind = address.partition(".")[0]
        name = observed.properties["name"]
        if kind in ("deployment", "retire"):
            endpoint = observed.properties["endpoint"]
            poller = call(lambda: self.ws.online_deployments.begin_delete(name=name, endpoint_name=endpoint),
                          f"delete deployment {endpoint}/{name}")
            ctx.record("deleting", {"deployment": f"{endpoint}/{name}"})
            self._wait_lro(poller, ctx, f"delete deployment {name}")
        elif kind == "endpoint":
            poller = call(lambda: self.ws.online_endpoints.begin_delete(name=name), f"delete endpoint {name}")
            ctx.record("deleting", {"endpoint": name})
            self._wait_lro(poller, ctx, f"delete endpoint {name}")
        elif kind == "compute":
            poller = call(lambda: self.ws.compute.begin_delete(name), f"delete compute {name}")
            ctx.record("deleting", {"compute": name})
            self._wait_lro(poller, ctx, f"delete compute {name}")
        elif kind == "model":
            version = observed.properties["version"]
            call(lambda: self.ws.models.archive(name=name, version=version), f"archive model {name}:{version}")
        elif kind == "data":
            version = observed.properties["version"]
            call(lambda: self.ws.data.archive(name=name, version=version), f"archive data {name}:{version}")

    def runs(self, graph: Graph) -> RunsFound:
        from finetune.backends.azureml.runs import list_runs

        compute = self.spec.compute
        sku = catalog.find_sku(compute.sku) if compute is not None else None
        price = sku.usd_per_hour * self.spec.finetune.num_nodes if sku and sku.usd_per_hour else None
        return list_runs(self.ws, self._pool, graph, self.spec.metadata.name, self.metrics, price)

    def owned(self, graph: Graph) -> dict[str, Observed]:
        """What this spec owns, by names and tags alone (concurrent reads): the endpoint, the model's and the data
        assets' active versions tagged with this spec, and the compute if finetune created it."""
        spec_name = self.spec.metadata.name
        reads: dict[str, Future] = {}
        for resource in graph.resources.values():
            if resource.kind == "endpoint" and is_known(resource.name):
                reads[resource.address] = self._pool.submit(obs.observe_endpoint, self.ws, resource, spec_name)
            elif resource.kind == "compute":
                reads[resource.address] = self._pool.submit(obs.observe_compute, self.ws, resource, spec_name)
            elif resource.kind == "model":
                reads[resource.address] = self._pool.submit(obs.list_model_versions, self.ws, resource.name)
            elif resource.kind == "data" and resource.desired.get("type") != "local file":
                reads[resource.address] = self._pool.submit(obs.list_active_versions, self.ws.data, resource.name)
        found: dict[str, Observed] = {}
        for address, future in reads.items():
            result = future.result()
            if isinstance(result, list):  # asset versions
                for asset in result:
                    props = {"name": asset.name, "version": str(asset.version)}
                    found[f"{address}@{asset.version}"] = Observed(True, props,
                                                                   managed=obs.managed_by(asset.tags, spec_name))
            elif result is not None:
                found[address] = result
        return found


def _usable_hint(allow: list[str] | tuple[str, ...], *, managed_online: bool = False) -> str:
    """Suggest only allow-listed sizes that can still be used (not retired; managed-online for deployments)."""
    usable = catalog.usable_skus(allow, managed_online=managed_online)
    return f"use one of: {', '.join(usable)}" if usable else "none of its allow-listed sizes is still offered: " \
        "pick another model"
