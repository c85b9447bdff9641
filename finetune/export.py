"""`finetune export SPEC --to azure-cli DIR`: the spec as `az ml` CLI v2 YAML files, from the planner's own graph.

The graph is the one `plan` builds: the spec with its lock file applied, the offline catalog and the prepared data's
hashes (offline), or what `plan_against_target` resolved (online, `--emulate` included). Values the graph does not
know yet (a floating label with no lock file, a workspace-derived endpoint name with no workspace) fail the export
with one line saying what to do; nothing is written then. Files are rendered with yaml.safe_dump, so every value is
quoted as YAML needs, and each starts with its `$schema` line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The tag and property names the azureml backend writes, so `finetune apply` finds (and adopts) what the az CLI
# created from these files.
from finetune.backends.azureml.observe import ATTEMPT_TAG, INPUTS_PROPERTY
from finetune.errors import FinetuneError
from finetune.graph import FORMAT_TAGS, Graph, ResolvedFacts, Resource, is_known, training_inputs
from finetune.spec.load import LoadedSpec
from finetune.spec.models import TargetKind

SCHEMA = "https://azuremlschemas.azureedge.net/latest/{}.schema.json"
SCHEMAS = {"compute": "amlCompute", "data": "data", "job": "pipelineJob", "model": "model",
           "endpoint": "managedOnlineEndpoint", "deployment": "managedOnlineDeployment"}
CREATE = {"compute": "az ml compute create", "data": "az ml data create", "job": "az ml job create",
          "model": "az ml model create", "endpoint": "az ml online-endpoint create",
          "deployment": "az ml online-deployment create"}
TARGETS = ("azure-cli",)
RESOLVE = "or pass --online or --emulate to resolve it against the target"

Say = Callable[[str], None]


@dataclass
class Document:
    file: str  # relative to the export folder
    kind: str  # the graph resource kind it creates
    address: str
    body: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # comment lines written under the $schema line

    def text(self) -> str:
        import yaml

        head = f"$schema: {SCHEMA.format(SCHEMAS[self.kind])}\n"
        notes = "".join(f"# {line}\n" for line in self.notes)
        return head + notes + yaml.safe_dump(self.body, sort_keys=False, default_flow_style=False, width=120)


@dataclass
class Exported:
    folder: Path
    documents: list[Document]
    commands: list[str]  # the README's commands, in order
    mode: str  # "offline" or "online"

    @property
    def files(self) -> list[str]:
        return [d.file for d in self.documents]


def check_target(loaded: LoadedSpec, to: str) -> None:
    """Refuse what cannot be exported, before anything is read or prepared."""
    if to not in TARGETS:
        raise FinetuneError(f"--to {to!r}: not a known export format", hint=f"use one of: {', '.join(TARGETS)}")
    if loaded.spec.target.kind is not TargetKind.AZUREML:
        raise FinetuneError("export --to azure-cli writes `az ml` files for the azureml target; this spec targets "
                            f"{loaded.spec.target.kind.value}",
                            hint="set target.kind: azureml (a local spec runs with `finetune apply` as it is)")


def export_azure_cli(loaded: LoadedSpec, folder: Path, *, backend=None, say: Say = lambda _m: None) -> Exported:
    """Write the `az ml` YAML files and README.md into `folder`. With `backend`, floating references are resolved
    and the target read through `plan_against_target` (the online plan's graph); without it, the offline graph."""
    from finetune.workflow import with_lock

    check_target(loaded, "azure-cli")
    if not loaded.locked:  # the CLI loads it locked already (the backend must see the pins too)
        loaded = with_lock(loaded)
    if backend is None:
        from finetune.dataprep import prepare_data
        from finetune.graph import build_graph
        from finetune.plan.planner import offline_facts
        from finetune.session import offline_target

        _require_pins(loaded, offline_facts(loaded))  # before preparing: a floating label fails in no time
        say("preparing data (cached when unchanged)")
        data = prepare_data(loaded)
        facts = offline_facts(loaded, data.hashes(), offline_target(loaded)[0])
        graph = build_graph(loaded.spec, facts)
        files = {role: result.path for role, result in data.roles.items()}
        mode = "offline"
    else:
        from finetune.workflow import plan_against_target

        planned = plan_against_target(loaded, backend, say)
        graph, facts, files = planned.graph, planned.facts, planned.data_files
        mode = "online"
    _require_known(loaded, graph, facts)
    documents = _documents(loaded, graph, facts)
    smoke = _smoke_request(graph, files)
    commands = _workspace_setup(facts.workspace_identity) + _commands(graph, documents, smoke is not None)
    _write(folder, loaded, documents, commands, files, smoke, mode)
    return Exported(folder, documents, commands, mode)


# ---- what must be known -----------------------------------------------------------------------------------------
def _require_pins(loaded: LoadedSpec, facts: ResolvedFacts) -> None:
    """The base model's and the component's versions: a floating label with no lock file is not known offline."""
    spec = loaded.spec
    if not facts.model_id:
        model = spec.model
        raise FinetuneError(f"model {model.registry}/{model.name} floats (label: {model.label or 'latest'}) and "
                            "no lock file pins it: its version is not known offline",
                            hint=f"run `finetune lock {loaded.path.name}` or pin model.version, {RESOLVE}")
    if not facts.component_version:
        component = spec.finetune.component
        raise FinetuneError(f"component {component.registry}/{component.name} floats (label: "
                            f"{component.label or 'latest'}) and no lock file pins it: its version is not known "
                            "offline", hint=f"run `finetune lock {loaded.path.name}` or pin "
                            f"finetune.component.version, {RESOLVE}")


def _require_known(loaded: LoadedSpec, graph: Graph, facts: ResolvedFacts) -> None:
    """One clear error for the first value the files need that the graph does not know."""
    _require_pins(loaded, facts)
    spec = loaded.spec
    for address, resource in graph.resources.items():
        if resource.kind == "data" and not is_known(resource.desired["sha256"]):
            raise FinetuneError(f"{address}: the data's content hash is not known",
                                hint=f"run `finetune data prepare {loaded.path.name}`")
    if spec.endpoint is not None and not is_known(graph.resources[f"endpoint.{spec.endpoint.name}"].name):
        raise FinetuneError("endpoint.unique_suffix derives the endpoint's name from the workspace, which is not set",
                            hint="set target.azureml, or AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and "
                            f"AZUREML_WORKSPACE_NAME, {RESOLVE.replace(' it ', ' the name ')}")
    for address in graph.order():
        resource = graph.resources[address]
        if resource.kind not in SCHEMAS or resource.desired.get("type") == "local file":
            continue
        # an `auto` model version is left to the service (the next integer), and deployments use @latest
        desired = {k: v for k, v in resource.desired.items() if not (
            (resource.kind == "model" and k == "version") or (resource.kind == "deployment" and k == "model"))}
        unknown = sorted(k for k, v in desired.items() if not is_known(v))
        if unknown or not is_known(resource.name):
            what = ", ".join(unknown) or "name"
            raise FinetuneError(f"{address}: {what} not known until the model version is registered "
                                "(registered_model.version: auto)",
                                hint="pin registered_model.version, or export after the first apply with --online")


# ---- the documents ----------------------------------------------------------------------------------------------
def _tags(loaded: LoadedSpec, resource: Resource, **extra: str) -> dict[str, str]:
    return {FORMAT_TAGS["spec"]: loaded.spec.metadata.name, FORMAT_TAGS["address"]: resource.address,
            FORMAT_TAGS["fingerprint"]: resource.fingerprint, **extra}


def _documents(loaded: LoadedSpec, graph: Graph, facts: ResolvedFacts) -> list[Document]:
    spec = loaded.spec
    build = {"compute": _compute, "data": _data, "job": _job, "model": _model, "endpoint": _endpoint,
             "deployment": _deployment}
    documents = []
    for address in graph.order():
        resource = graph.resources[address]
        if resource.kind in build and resource.desired.get("type") != "local file":
            documents.append(build[resource.kind](loaded, graph, resource, facts))
    if spec.endpoint is not None:
        traffic = graph.resources[f"traffic.{spec.endpoint.name}"].desired["traffic"]
        for document in documents:
            if document.kind == "deployment":
                share = traffic.get(document.body["name"], 0)
                document.notes.append(f"traffic: {share}% of {document.body['endpoint_name']} once created "
                                      "(README.md: az ml online-endpoint update --traffic)")
            elif document.kind == "endpoint":
                split = " ".join(f"{name}={pct}" for name, pct in traffic.items())
                document.notes.append(f"traffic ({split}) is routed after the deployments exist (README.md)")
    return documents


def _compute(loaded: LoadedSpec, graph: Graph, resource: Resource, facts: ResolvedFacts) -> Document:
    d = resource.desired
    body = {"name": d["name"], "type": "amlcompute", "size": d["size"], "tier": d["tier"],
            "min_instances": d["min_instances"], "max_instances": d["max_instances"],
            "idle_time_before_scale_down": d["idle_time_before_scale_down"], "tags": _tags(loaded, resource)}
    return Document("compute.yaml", "compute", resource.address, body)


def _data(loaded: LoadedSpec, graph: Graph, resource: Resource, facts: ResolvedFacts) -> Document:
    d = resource.desired
    role = resource.address.split(".", 1)[1]
    body = {"name": d["name"], "version": d["version"], "type": "uri_file", "path": f"data/{d['file']}",
            "description": f"{role} split prepared by finetune ({d['source']})",
            "tags": _tags(loaded, resource, **{"finetune.sha256": d["sha256"]})}
    notes = [f"sha256 {d['sha256']}: the version is its first 12 digits"]
    return Document(f"data-{role}.yaml", "data", resource.address, body, notes)


def component_uri(loaded: LoadedSpec, facts: ResolvedFacts) -> str:
    component = loaded.spec.finetune.component
    version = facts.component_version or component.version
    return f"azureml://registries/{component.registry}/components/{component.name}/versions/{version}"


def _job(loaded: LoadedSpec, graph: Graph, resource: Resource, facts: ResolvedFacts) -> Document:
    """The pipeline job `_pipeline_job` submits: the component's node with the model path, the data assets, the
    four compute bindings and the effective parameters; its trained model as the pipeline's output."""
    d = resource.desired
    cluster = d["compute"]
    inputs: dict[str, Any] = {"mlflow_model_path": {"type": "mlflow_model", "path": d["model"]}}
    inputs.update({f"compute_{step}": cluster for step in ("model_import", "preprocess", "finetune",
                                                           "model_evaluation")})
    for role in ("train", "validation", "test"):
        if role in d["data"]:
            asset = graph.resources[f"data.{role}"].desired
            inputs[f"{role}_file_path"] = {"type": "uri_file", "path": f"azureml:{asset['name']}:{asset['version']}"}
    inputs.update(d["parameters"])
    node = loaded.spec.finetune.component.name
    body = {
        "type": "pipeline", "name": d["name"], "display_name": d["display_name"], "experiment_name": d["experiment"],
        "description": f"finetune {loaded.spec.metadata.name}",
        "tags": _tags(loaded, resource, **{ATTEMPT_TAG: str(facts.job_attempt)}),
        "properties": {INPUTS_PROPERTY: json.dumps(training_inputs(d), sort_keys=True)},
        "settings": {"force_rerun": d["force_rerun"], "continue_on_step_failure": d["continue_on_step_failure"]},
        "outputs": {"trained_model": {"type": "mlflow_model"}},
        "jobs": {node: {"type": "pipeline", "component": component_uri(loaded, facts), "inputs": inputs,
                        "outputs": {"mlflow_model_folder": "${{parent.outputs.trained_model}}"}}},
    }
    notes = [f"fingerprint {resource.fingerprint}: the job's name is derived from it; a re-run of the same inputs "
             "has the same name"]
    return Document("job.yaml", "job", resource.address, body, notes)


def _model(loaded: LoadedSpec, graph: Graph, resource: Resource, facts: ResolvedFacts) -> Document:
    d = resource.desired
    body: dict[str, Any] = {"name": d["name"]}
    notes = []
    if is_known(d["version"]):
        body["version"] = str(d["version"])
    else:
        notes.append("no version: the service registers the next integer (registered_model.version: auto)")
    body.update({"type": d["type"], "path": d["path"], "tags": _tags(loaded, resource, **{"finetune.job": d["job"]})})
    if d.get("description"):
        body["description"] = d["description"]
    return Document("model.yaml", "model", resource.address, body, notes)


def _endpoint(loaded: LoadedSpec, graph: Graph, resource: Resource, facts: ResolvedFacts) -> Document:
    d = resource.desired
    body = {"name": d["name"], "auth_mode": d["auth_mode"]}
    if d.get("description"):
        body["description"] = d["description"]
    body["tags"] = _tags(loaded, resource)
    return Document("endpoint.yaml", "endpoint", resource.address, body)


def _deployment(loaded: LoadedSpec, graph: Graph, resource: Resource, facts: ResolvedFacts) -> Document:
    d = resource.desired
    model_name, _, version = d["model"].partition("@")
    model = f"azureml:{model_name}:{version}" if is_known(version) else f"azureml:{model_name}@latest"
    body: dict[str, Any] = {"name": d["name"], "endpoint_name": d["endpoint"], "model": model,
                            "instance_type": d["sku"], "instance_count": d["instance_count"]}
    if d.get("liveness_probe"):
        body["liveness_probe"] = {k: v for k, v in d["liveness_probe"].items() if v is not None}
    settings = {k: d[k] for k in ("request_timeout_ms", "max_concurrent_requests_per_instance") if d.get(k)}
    if settings:
        body["request_settings"] = settings
    body["tags"] = _tags(loaded, resource)
    short = resource.address.split("/", 1)[1]
    return Document(f"deployment-{short}.yaml", "deployment", resource.address, body)


# ---- README and writing -----------------------------------------------------------------------------------------
def _workspace_setup(identity: str | None) -> list[str]:
    """The commands that point `az ml` at the spec's workspace once, so the create commands need no flags."""
    if identity and identity.count("/") == 2 and is_known(identity):
        subscription, group, workspace = identity.split("/")
        return [f"az account set --subscription {subscription}",
                f"az configure --defaults group={group} workspace={workspace}"]
    return ["az account set --subscription <SUBSCRIPTION_ID>",
            "az configure --defaults group=<RESOURCE_GROUP> workspace=<WORKSPACE_NAME>"]


def _commands(graph: Graph, documents: list[Document], request: bool) -> list[str]:
    commands = []
    for document in documents:
        commands.append(f"{CREATE[document.kind]} -f {document.file}")
        if document.kind == "job":
            commands.append(f"az ml job stream --name {document.body['name']}")
    traffic = next((r for r in graph.resources.values() if r.kind == "traffic"), None)
    if traffic is not None:
        split = " ".join(f"{name}={pct}" for name, pct in traffic.desired["traffic"].items())
        commands.append(f'az ml online-endpoint update --name {traffic.desired["endpoint"]} --traffic "{split}"')
    smoke = next((r for r in graph.resources.values() if r.kind == "smoke_test"), None)
    if smoke is not None and request:
        d = smoke.desired
        commands.append(f"az ml online-endpoint invoke --name {d['endpoint']} --deployment-name {d['deployment']} "
                        f"--request-file sample-request.json")
    return commands


def _smoke_request(graph: Graph, files: dict[str, str]) -> dict[str, Any] | None:
    """The smoke test's request body (its row of the sample split), for `az ml online-endpoint invoke`."""
    smoke = next((r for r in graph.resources.values() if r.kind == "smoke_test"), None)
    sample = files.get("sample") or files.get("test")
    if smoke is None or not sample:
        return None
    from finetune.invoke import build_request

    d = smoke.desired
    return build_request(sample, d["row"], d["seed"], d["parameters"])


def _write(folder: Path, loaded: LoadedSpec, documents: list[Document], commands: list[str], files: dict[str, str],
           smoke: dict[str, Any] | None, mode: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data").mkdir(exist_ok=True)
        for document in documents:
            if document.kind == "data":
                role = document.address.split(".", 1)[1]
                shutil.copyfile(files[role], folder / document.body["path"])
            (folder / document.file).write_text(document.text(), encoding="utf-8")
        if smoke is not None:
            (folder / "sample-request.json").write_text(json.dumps(smoke, indent=2) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(_readme(loaded, documents, commands, mode), encoding="utf-8")
    except OSError as exc:
        raise FinetuneError(f"cannot write the export to {folder}: {exc.strerror or exc}",
                            hint="choose a folder you can write to") from None


def _readme(loaded: LoadedSpec, documents: list[Document], commands: list[str], mode: str) -> str:
    name = loaded.spec.metadata.name
    how = ("from the offline graph (lock file, offline catalog, prepared data)" if mode == "offline" else
           "from the graph resolved against the target")
    lines = [f"# `az ml` files for {name}", "",
             f"Exported by `finetune export {loaded.path.name} --to azure-cli`, {how}: the same graph `finetune plan` "
             "shows. Each file carries finetune's tags, so a later `finetune apply` of the spec finds what these "
             "commands created instead of creating it again.", "",
             "Run in this folder, in this order (the first two point `az ml` at the workspace; the endpoint does not "
             "wait on training):", "", "```bash"]
    lines += commands
    lines += ["```", "", "| file | creates |", "|---|---|"]
    lines += [f"| `{d.file}` | `{d.address}` ({SCHEMAS[d.kind]}) |" for d in documents]
    lines += ["", "Notes:", "",
              "- `data/` holds the prepared JSONL files; each data asset's version is the first 12 hex digits of "
              "its sha256, so changed data is a new version.",
              "- The job's name comes from its training fingerprint: `az ml job create` refuses it when that job "
              "exists already (it ran: skip to the model).",
              "- `az ml online-endpoint update --traffic` routes traffic once the deployments exist.", ""]
    return "\n".join(lines)
