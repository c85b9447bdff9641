"""The resource graph: the desired state of everything a spec manages, as plain data.

A pure function of (spec, resolved facts). Facts that are not known yet (a floating model label before it is
resolved, data not prepared yet) are UNKNOWN, and so is everything derived from them, shown as "(known after apply)".
"""

from __future__ import annotations

import graphlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from finetune import catalog
from finetune.catalog.params import ParameterResolution, normalize, resolve_parameters
from finetune.spec.models import Spec, TargetKind
from finetune.spec.naming import endpoint_name

UNKNOWN = "(known after apply)"
FORMAT_TAGS = {"spec": "finetune.spec", "address": "finetune.address", "fingerprint": "finetune.fingerprint"}


def is_known(value: Any) -> bool:
    """False for UNKNOWN, for a text built from it (`model@(known after apply)`), and for containers holding one."""
    if isinstance(value, str) and UNKNOWN in value:
        return False
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(is_known(v) for v in value)
    return True


def fingerprint(*parts: Any) -> str:
    """sha256 over a canonical JSON of `parts`; UNKNOWN if any part is not known yet."""
    if not all(is_known(p) for p in parts):
        return UNKNOWN
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Resource:
    address: str  # kind.name, e.g. "deployment.ultrachat-completion/demo"
    kind: str
    name: str
    desired: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    fingerprint: str = UNKNOWN


@dataclass(frozen=True)
class ResolvedFacts:
    """What the planner learned before building the graph. Offline, most of it is unknown."""

    workspace_identity: str | None = None  # "sub/rg/ws" when known
    model_version: str | None = None  # the base model version a label resolved to
    model_id: str | None = None  # e.g. azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/15
    model_defaults: dict[str, Any] | None = None  # the model's model_specific_defaults
    model_defaults_origin: str = ""  # where they came from ("registry tags", "offline catalog")
    component_version: str | None = None
    data_hashes: dict[str, str] = field(default_factory=dict)  # role -> sha256 of the prepared JSONL
    gpus_per_node: int | None = None
    registered_version: str | None = None  # the model version already registered from this training run
    data_commit: str | None = None  # the hub dataset's commit the prepared data came from
    job_attempt: int = 1  # which attempt of this fingerprint the job is (2 after one failed attempt, ...)
    data_stats: dict[str, dict[str, int]] = field(default_factory=dict)  # role -> the data step's counts
    # The local target: this machine's measured training throughput (calibration) and the trainer's own
    # effective parameters with their sources (target and library defaults included).
    throughput: dict[str, Any] | None = None
    trainer_parameters: tuple[dict[str, Any], ...] | None = None
    # Parameters the backend derives from what it resolved (the local target's LoRA modules for the base model's
    # architecture): shown in the plan as `derived` and part of the job's fingerprint.
    derived_parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    resources: dict[str, Resource]
    parameters: ParameterResolution | None = None

    def order(self) -> list[str]:
        """Addresses in dependency order (ties broken by insertion order, which follows the lifecycle)."""
        sorter = graphlib.TopologicalSorter({a: r.depends_on for a, r in self.resources.items()})
        try:
            ready = list(sorter.static_order())
        except graphlib.CycleError as exc:  # cannot happen for graphs built here; guards hand-made graphs
            raise ValueError(f"dependency cycle: {' -> '.join(exc.args[1])}") from None
        position = {a: i for i, a in enumerate(self.resources)}
        levels: dict[str, int] = {}
        for address in ready:
            deps = self.resources[address].depends_on
            levels[address] = 1 + max((levels[d] for d in deps), default=-1)
        return sorted(ready, key=lambda a: (levels[a], position[a]))

    def dependents(self, address: str) -> set[str]:
        """Every resource that (transitively) depends on `address`."""
        found: set[str] = set()
        frontier = [address]
        while frontier:
            current = frontier.pop()
            for other in self.resources.values():
                if current in other.depends_on and other.address not in found:
                    found.add(other.address)
                    frontier.append(other.address)
        return found


TRAINING_INPUTS = ("model", "component", "data", "parameters")


def training_inputs(job_desired: dict[str, Any]) -> dict[str, Any]:
    """What decides a training run (the fingerprint's parts), as recorded on each job to explain the next one."""
    return {key: job_desired[key] for key in TRAINING_INPUTS if key in job_desired}  # local runs: no component


def data_asset_name(spec: Spec, role: str) -> str:
    return f"{spec.metadata.name}-{role}"


def job_name(spec: Spec, job_fingerprint: str, attempt: int = 1) -> str:
    """Deterministic: a fingerprint's attempt can only ever name one job, so no attempt runs twice. The first
    attempt has the plain name; a retry after a failed attempt N is `<name>-a<N+1>` (never a timestamp)."""
    if job_fingerprint == UNKNOWN:
        return UNKNOWN
    base = f"ft-{spec.metadata.name}-{job_fingerprint[:12]}"
    return base if attempt <= 1 else f"{base}-a{attempt}"


def resolved_endpoint_name(spec: Spec, facts: ResolvedFacts) -> str:
    assert spec.endpoint is not None
    if spec.endpoint.unique_suffix and not facts.workspace_identity:
        return f"{spec.endpoint.name}-{UNKNOWN}"
    return endpoint_name(spec.endpoint.name, spec.endpoint.unique_suffix, facts.workspace_identity or "",
                         spec.metadata.name)


def build_graph(spec: Spec, facts: ResolvedFacts) -> Graph:
    resources: list[Resource] = []
    azure = spec.target.kind is TargetKind.AZUREML

    compute_address = None
    if azure and spec.compute is not None:
        compute = spec.compute
        desired = {"name": compute.name, "size": compute.sku, "tier": compute.tier,
                   "min_instances": compute.min_instances, "max_instances": compute.max_instances,
                   "idle_time_before_scale_down": compute.idle_time_before_scale_down}
        compute_address = f"compute.{compute.name}"
        resources.append(Resource(compute_address, "compute", compute.name, desired, (), fingerprint(desired)))

    data_addresses = []
    data_hashes: dict[str, str] = {}
    for role in _data_roles(spec):
        sha = facts.data_hashes.get(role, UNKNOWN)
        data_hashes[role] = sha
        name = data_asset_name(spec, role)
        desired = {"name": name, "version": sha[:12] if sha != UNKNOWN else UNKNOWN, "sha256": sha,
                   "file": f"{role}.jsonl", "source": _source_text(spec),
                   # the smoke-test sample stays on this machine; the others become data assets
                   "type": "local file" if role == "sample" else "uri_file"}
        address = f"data.{role}"
        if role != "sample":  # the smoke-test sample stays local; it is never uploaded
            data_addresses.append(address)
        resources.append(Resource(address, "data", name, desired, (), fingerprint(sha)))

    resolution = _parameters(spec, facts)
    effective = {name: p.value for name, p in resolution.parameters.items() if p.source != "component default"} \
        if resolution else dict(spec.finetune.parameters)
    model_ref = facts.model_id or (UNKNOWN if spec.model.name and not spec.model.version else spec.model.reference)
    component = spec.finetune.component
    component_ref = f"{component.registry}/{component.name}@{facts.component_version or component.version or UNKNOWN}"
    train_hashes = {role: data_hashes[role] for role in data_hashes if role != "sample"}
    job_fp = fingerprint(model_ref, train_hashes, effective, component_ref if azure else "local")
    job_desired: dict[str, Any] = {
        "name": job_name(spec, job_fp, facts.job_attempt), "attempt": facts.job_attempt, "experiment": spec.experiment}
    if azure:  # the pipeline job's settings; the local trainer has none of them
        job_desired.update({"display_name": spec.finetune.display_name or _display_name(spec, effective),
                            "model": model_ref, "component": component_ref,
                            "compute": spec.compute.name if spec.compute else "local",
                            "num_nodes": spec.finetune.num_nodes})
    else:
        job_desired["model"] = model_ref
    job_desired.update({"parameters": effective, "data": {role: data_hashes[role] for role in train_hashes}})
    if azure:
        job_desired.update({"force_rerun": spec.finetune.force_rerun,
                            "continue_on_step_failure": spec.finetune.continue_on_step_failure})
    job_deps = tuple(a for a in [compute_address, *data_addresses] if a)
    resources.append(Resource("job.finetune", "job", "finetune", job_desired, job_deps, job_fp))

    model = spec.registered_model
    model_address = f"model.{model.name}"
    version = model.version if model.version != "auto" else (facts.registered_version or UNKNOWN)
    model_desired = {"name": model.name, "version": version,
                     "description": model.description, "job": job_desired["name"], "type": "mlflow_model"}
    if azure:  # locally the model is registered from the job's folder in MLflow
        model_desired["path"] = f"azureml://jobs/{job_desired['name']}/outputs/trained_model"
    resources.append(Resource(model_address, "model", model.name, model_desired, ("job.finetune",), job_fp))

    if spec.endpoint is not None:
        _endpoint_resources(spec, facts, resources, model_address, model_desired, job_fp)
    return Graph({r.address: r for r in resources}, resolution)


def _endpoint_resources(spec: Spec, facts: ResolvedFacts, resources: list[Resource], model_address: str,
                        model_desired: dict, job_fp: str) -> None:
    endpoint = spec.endpoint
    assert endpoint is not None
    name = resolved_endpoint_name(spec, facts)
    ep_address = f"endpoint.{endpoint.name}"
    azure = spec.target.kind is TargetKind.AZUREML
    # A local endpoint is a record in the state folder: no auth, one server per deployment, no probes or timeouts.
    ep_desired = {"name": name, "auth_mode": endpoint.auth_mode, "description": endpoint.description} if azure else \
        {"name": name, "description": endpoint.description}
    resources.append(Resource(ep_address, "endpoint", name, ep_desired, (), fingerprint(ep_desired)))
    blue_green = endpoint.rollout == "blue_green"
    version = model_desired["version"]
    actual = {d.name: (f"{d.name}-v{version}" if blue_green else d.name) for d in endpoint.deployments}
    deployment_addresses = []
    for deployment in endpoint.deployments:
        desired: dict[str, Any] = {"name": actual[deployment.name], "endpoint": name}
        if azure:
            desired.update({
                "sku": deployment.sku, "instance_count": deployment.instance_count,
                "model": f"{model_desired['name']}@{version}",
                "liveness_probe": deployment.liveness_probe.model_dump(),
                "request_timeout_ms": deployment.request_timeout_ms,
                "max_concurrent_requests_per_instance": deployment.max_concurrent_requests_per_instance,
            })
        else:
            desired["model"] = f"{model_desired['name']}@{version}"
        address = f"deployment.{endpoint.name}/{deployment.name}"
        deployment_addresses.append(address)
        settings = {k: v for k, v in desired.items() if k != "model"}
        resources.append(Resource(address, "deployment", actual[deployment.name], desired,
                                  (ep_address, model_address), fingerprint(settings, job_fp)))
    traffic = {actual[k]: v for k, v in spec.traffic.items()}
    traffic_address, smoke_address = f"traffic.{endpoint.name}", f"smoke_test.{endpoint.name}"
    smoke = spec.smoke_test if spec.smoke_test.enabled else None
    # blue/green: the new deployments are smoke-tested BEFORE traffic moves to them; in place: after.
    traffic_deps = tuple(deployment_addresses) + ((smoke_address,) if smoke and blue_green else ())
    resources.append(Resource(traffic_address, "traffic", name, {"endpoint": name, "traffic": traffic},
                              traffic_deps, fingerprint(traffic)))
    if smoke is not None:
        target = max(traffic, key=lambda k: traffic[k]) if traffic else actual[endpoint.deployments[0].name]
        desired = {"endpoint": name, "deployment": target, "row": smoke.row, "seed": smoke.seed,
                   "parameters": dict(smoke.parameters),
                   "sample_split": spec.data.splits.sample or spec.data.splits.test}
        upstream = tuple(deployment_addresses) if blue_green else (traffic_address,)
        deps = upstream + (("data.sample",) if spec.data.splits.sample else ())
        resources.append(Resource(smoke_address, "smoke_test", name, desired, deps, fingerprint(desired, job_fp)))


def _data_roles(spec: Spec) -> list[str]:
    splits = spec.data.splits
    roles = ["train"]
    if splits.validation or spec.data.validation_from_train:
        roles.append("validation")
    if splits.test:
        roles.append("test")
    if splits.sample:
        roles.append("sample")
    return roles


def _source_text(spec: Spec) -> str:
    source = spec.data.source
    if hasattr(source, "hf"):
        return f"hf:{source.hf}" + (f"@{source.revision}" if source.revision else "")
    return f"path:{source.path}" if source.path else "files:" + ",".join(sorted(source.files or {}))


def _parameters(spec: Spec, facts: ResolvedFacts) -> ParameterResolution | None:
    component = spec.finetune.component
    schema = catalog.component_schema(component.name, facts.component_version or component.version) or \
        catalog.component_schema(component.name)
    if schema is None:
        return None
    explicit = {name: normalize(schema.inputs[name], value) for name, value in spec.finetune.parameters.items()
                if name in schema.inputs}
    derived: dict[str, Any] = {}
    if spec.target.kind is TargetKind.AZUREML:
        gpus = facts.gpus_per_node
        if gpus is None and spec.compute is not None:
            sku = catalog.find_sku(spec.compute.sku)
            gpus = int(sku.gpus) if sku and sku.gpus >= 1 else None
        derived["number_of_gpu_to_use_finetuning"] = gpus if gpus is not None else UNKNOWN
        derived["num_nodes_finetune"] = spec.finetune.num_nodes
        explicit.pop("number_of_gpu_to_use_finetuning", None)
    derived.update(facts.derived_parameters)
    defaults = facts.model_defaults or {}
    # The local trainer has defaults of its own; the component's would mislead there.
    return resolve_parameters(schema, explicit, defaults, spec.finetune.model_defaults, derived,
                              show_component_defaults=spec.target.kind is TargetKind.AZUREML)


def _display_name(spec: Spec, params: dict[str, Any]) -> str:
    """The notebook's naming scheme, built from effective values instead of timestamps."""
    model = spec.model.name or spec.model.hf or "model"
    scheduler = params.get("lr_scheduler_type", "linear")
    lora = "lora" if str(params.get("apply_lora", "false")) == "true" else "nolora"
    deepspeed = f"ds{params.get('deepspeed_stage', '2')}" if str(params.get("apply_deepspeed")) == "true" else "nods"
    return f"{model}-{spec.metadata.name}-{scheduler}-{deepspeed}-{lora}"
