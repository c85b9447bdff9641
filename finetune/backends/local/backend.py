"""The local target: the same lifecycle on this machine.

Data: the prepared files. Job: a detached LoRA training process (trainjob). Model: the MLflow registry (sqlite under
the state folder). Endpoint and deployments: local HTTP servers speaking the Azure ML chat-completion shape.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from finetune.backends.base import RunsFound, StepContext, TrainingProgress, registered_model
from finetune.dataprep import state_dir
from finetune.errors import Diagnostic, Diagnostics, FinetuneError
from finetune.graph import FORMAT_TAGS, UNKNOWN, Graph, ResolvedFacts, Resource, training_inputs
from finetune.invoke import parse_response, sample_request
from finetune.plan.model import Action, Change, Observed
from finetune.spec.load import LoadedSpec

INPUTS_FILE = "finetune-inputs.json"  # what decided this run, to explain the next one
QUIET_SECONDS = 4.0  # the longest a running job goes unreported (a slow import or model load still says so)
INPUTS_TAG = "finetune.inputs"  # the same on the run's MLflow tags
JOB_TAG = "finetune.job"
JOB_STATES = {"NotStarted": None, "Running": "Running", "Completed": "Completed", "Failed": "Failed",
              "Canceled": "Canceled", "Interrupted": "Interrupted"}


class LocalBackend:
    def __init__(self, loaded: LoadedSpec) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.root = state_dir(loaded)
        self.target_identity = f"local:{self.root}"
        self.workspace_identity = None
        settings = self.spec.target.local
        self.tracking_uri = settings.tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    def close(self) -> None:
        pass

    def target_info(self) -> dict[str, Any]:
        return {"kind": "local", "mode": "online", "identity": self.target_identity}

    def prefetch(self, graph: Graph) -> None:
        """Local reads are file reads: nothing to start early."""

    # ---- paths ----------------------------------------------------------------------------------------------------
    def job_dir(self, job_name: str) -> Path:
        return self.root / "jobs" / job_name

    def endpoint_file(self, name: str) -> Path:
        return self.root / "endpoints" / f"{name}.json"

    def server_file(self, endpoint: str, deployment: str) -> Path:
        return self.root / "servers" / f"{endpoint}--{deployment}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        from finetune.backends.local.proc import read_json

        return read_json(path)

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        from finetune.backends.local.proc import write_json_atomic

        write_json_atomic(path, data)

    # ---- resolve / observe / preflight ----------------------------------------------------------------------------
    def resolve(self, loaded: LoadedSpec, facts: ResolvedFacts) -> tuple[ResolvedFacts, list[Diagnostic]]:
        """Find the base model (a folder, or a snapshot in the Hugging Face cache): a missing or incomplete one
        fails here, in milliseconds, not in the training process. A hub model's cached commit becomes part of the
        job's identity; the LoRA modules that fit its architecture become a derived parameter."""
        from dataclasses import replace

        from finetune.backends.local import basemodel

        base = self.base_model()
        derived: dict[str, Any] = {}
        if str(self.spec.finetune.parameters.get("apply_lora", "true")).lower() != "false":
            derived["lora_target_modules"] = base.lora_targets() if base else ",".join(basemodel.LORA_TARGETS["llama"])
        model_id = base.reference if base and base.commit else facts.model_id
        return replace(facts, model_id=model_id, derived_parameters={**facts.derived_parameters, **derived}), []

    def derived_notes(self) -> dict[str, str]:
        """Why each derived parameter has its value, for the plan."""
        if str(self.spec.finetune.parameters.get("apply_lora", "true")).lower() == "false":
            return {}
        base = self.base_model(required=False)
        if base is None:
            return {"lora_target_modules": "attention and MLP projections of the tiny model (llama)"}
        known = base.lora_targets() != "all-linear"
        return {"lora_target_modules": f"attention and MLP projections of {base.architecture}" if known else
                f"{base.architecture} is not in finetune's table: every linear layer (peft)"}

    def base_model(self, *, required: bool = True):
        """The spec's hf or path model, located and checked once per backend (None for a tiny model). With
        `required=False`, None too when it cannot be located (resolve already said why: status carries on)."""
        from finetune.backends.local import basemodel

        if not required:
            try:
                return self.base_model()
            except FinetuneError:
                return None
        if getattr(self, "_base", None) is None and self.spec.model.tiny is None:
            model = self.spec.model
            try:
                self._base = basemodel.locate_hf(model.hf) if model.hf else basemodel.locate_path(
                    (self.loaded.base_dir / model.path).resolve())
            except basemodel.BaseModelError as exc:
                field = "hf" if model.hf else "path"
                raise FinetuneError([Diagnostic(d.severity, d.message, path=f"model.{field}", hint=d.hint,
                                                location=self.loaded.source.locate(("model", field)))
                                     for d in exc.diagnostics]) from None
        return getattr(self, "_base", None)

    def observe(self, graph: Graph, data_files: dict[str, str]) -> dict[str, Observed | None]:
        from finetune.backends.local import registry, server, trainjob

        observed: dict[str, Observed | None] = {}
        for address, resource in graph.resources.items():
            d = resource.desired
            if resource.kind == "data":
                known = d["sha256"] != UNKNOWN and address.split(".", 1)[1] in data_files
                observed[address] = Observed(True, dict(d)) if known else None
            elif resource.kind == "job":
                if d["name"] == UNKNOWN:  # inputs unknown (data not prepared here): the newest run, for status
                    observed[address] = self._previous_run()
                    continue
                status = trainjob.observe(self.job_dir(d["name"]))
                state = JOB_STATES.get(status.state.value, status.state.value)
                observed[address] = self._previous_run() if state is None else Observed(
                    True, {"name": d["name"]}, status=state,
                    details={"name": d["name"], "metrics": status.metrics, "step": status.step,
                             "run_id": status.mlflow_run_id, "model_dir": status.model_dir,
                             **({"evaluation": status.evaluation} if status.evaluation else {})})
            elif resource.kind == "model":
                version = None
                if resource.fingerprint != UNKNOWN and (self.root / "mlflow.db").exists():
                    version = registry.find_model_version(self.tracking_uri, resource.name,
                                                          {FORMAT_TAGS["fingerprint"]: resource.fingerprint})
                observed[address] = None if version is None else Observed(
                    True, {"name": resource.name, "version": version, "description": d.get("description"),
                           "job": d["job"], "type": "mlflow_model"})
            elif resource.kind == "endpoint":
                record = self._read(self.endpoint_file(d["name"]))
                observed[address] = None if record is None else Observed(
                    True, {k: record.get(k) for k in ("name", "description")},
                    details={"traffic": record.get("traffic", {}), "smoke_test": record.get("smoke_test")})
            elif resource.kind == "deployment":
                status = server.server_status(self.server_file(d["endpoint"], d["name"]))
                record = self._read(self.server_file(d["endpoint"], d["name"])) or {}
                if status.state != "alive":
                    observed[address] = None  # a dead server is recreated by apply; status says it died
                    continue
                props = {**{k: v for k, v in d.items() if k != "model"}, "model": record.get("model")}
                observed[address] = Observed(True, props, details={"url": status.info.url, "pid": status.info.pid,
                                                                   "health": "alive"})
        observed.update(self._retired_servers(graph))
        for address, resource in graph.resources.items():
            endpoint = observed.get(f"endpoint.{self.spec.endpoint.name}") if self.spec.endpoint else None
            if resource.kind == "traffic":
                observed[address] = None if endpoint is None else Observed(
                    True, {"endpoint": resource.desired["endpoint"], "traffic": endpoint.details.get("traffic")})
            elif resource.kind == "smoke_test":
                passed = endpoint is not None and endpoint.details.get("smoke_test") == resource.fingerprint
                observed[address] = Observed(True, {}) if passed else None
        return observed

    def _previous_run(self) -> Observed | None:
        """The newest earlier training run and its inputs: the baseline a new run is explained against."""
        recorded = sorted((self.root / "jobs").glob(f"*/{INPUTS_FILE}"), key=lambda p: p.stat().st_mtime)
        if not recorded:
            return None
        inputs = self._read(recorded[-1])
        return Observed(False, details={"previous": recorded[-1].parent.name, "previous_inputs": inputs})

    def _retired_servers(self, graph: Graph) -> dict[str, Observed]:
        """Servers of this endpoint for deployments the graph no longer has (removed, or replaced by a rollout)."""
        if self.spec.endpoint is None:
            return {}
        endpoint = next(r for r in graph.resources.values() if r.kind == "endpoint").name
        wanted = {r.desired["name"] for r in graph.resources.values() if r.kind == "deployment"}
        retired = {}
        for state in (self.root / "servers").glob(f"{endpoint}--*.json"):
            name = state.stem.split("--", 1)[1]
            if name not in wanted:
                retired[f"retire.{self.spec.endpoint.name}/{name}"] = Observed(True, {"name": name, "endpoint":
                                                                                     endpoint})
        return retired

    def training_facts(self, graph: Graph, facts: ResolvedFacts, data_files: dict[str, str], *, measure: bool,
                       say: Callable[[str], None]) -> ResolvedFacts:
        """The trainer's effective parameters (library defaults included) and this machine's measured throughput:
        cached, or measured by a short calibration run when `measure` and the training data is here."""
        from finetune.backends.local import calibrate
        from finetune.backends.local.params import trainer_parameters

        job = graph.resources["job.finetune"]
        config = self._train_config(job, {"train": "", **data_files})
        cache = self.root / "cache"
        throughput = calibrate.cached(cache, config)
        if throughput is None and measure and data_files.get("train"):
            say("measuring this machine's training speed for the time estimate (once per machine and model)")
            try:
                throughput = calibrate.measure(config, cache)
            except calibrate.CalibrationError as exc:
                throughput = {"error": str(exc)}
        spec_params = dict(self.spec.finetune.parameters)
        parameters = trainer_parameters(config, spec_params, seed_from_tiny=self.spec.model.tiny is not None and
                                        "seed" not in spec_params,
                                        has_eval=any(f"data.{r}" in graph.resources for r in ("validation", "test")),
                                        libraries=calibrate.cached_libraries(cache),
                                        derived=self.derived_notes())
        return replace(facts, throughput=throughput, trainer_parameters=parameters)

    def preflight(self, graph: Graph, observed: dict[str, Observed | None]) -> list[Diagnostic]:
        from finetune.backends.local.config import DEFAULT_PARAMETERS

        found = Diagnostics()
        for name in self.spec.finetune.parameters:
            if name not in DEFAULT_PARAMETERS:
                found.warning(f"parameter '{name}' has no effect on the local target", address="job.finetune")
        base = self.base_model(required=False)
        for warning in base.warnings if base else ():
            found.warning(warning, address="job.finetune")
        if self.spec.model.quantization:
            from finetune.backends.local.basemodel import qlora_unavailable

            reason = qlora_unavailable()
            if reason:
                found.error(f"4-bit QLoRA cannot run on this machine: {reason}", address="job.finetune",
                            hint="remove `model.quantization` to train LoRA on the full-precision base")
        return found.items

    # ---- apply ----------------------------------------------------------------------------------------------------
    def apply(self, change: Change, ctx: StepContext) -> dict[str, Any]:
        if change.action is Action.NOOP:
            current = ctx.observed.get(change.address)
            return {**current.properties, **current.details} if current else {}
        if change.action is Action.DELETE:
            self.destroy(change.address, ctx.observed[change.address], ctx)
            return {}
        resource = ctx.graph.resources[change.address]
        return getattr(self, f"_apply_{resource.kind}")(resource, change, ctx) or {}

    def _apply_data(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        role = resource.address.split(".", 1)[1]
        if role not in ctx.data_files:
            raise FinetuneError(f"prepared {role} data is missing", hint="run `finetune data prepare SPEC`")
        return {"path": ctx.data_files[role]}

    def _train_config(self, resource: Resource, data_files: dict[str, str]):
        from finetune.backends.local.config import DEFAULT_PARAMETERS, LocalTrainConfig, MlflowSettings, ModelSource

        model = self.spec.model
        if model.tiny is not None:
            tiny = model.tiny
            source = ModelSource(tiny={"layers": tiny.layers, "hidden": tiny.hidden_size, "heads": tiny.heads,
                                       "vocab_size": tiny.vocab_size})
        elif model.path is not None:
            source = ModelSource(path=str((self.loaded.base_dir / model.path).resolve()),
                                 quantization=model.quantization)
        else:
            base = self.base_model(required=False)  # located by resolve; status carries on without it
            source = ModelSource(hf=model.hf, revision=base.commit if base else None, quantization=model.quantization)
        params = {k: v for k, v in resource.desired["parameters"].items() if k in DEFAULT_PARAMETERS}
        if model.tiny is not None and "seed" not in params:
            params["seed"] = model.tiny.seed
        mlflow = MlflowSettings(tracking_uri=self.tracking_uri, experiment_name=self.spec.experiment,
                                run_name=resource.desired["name"],
                                tags={FORMAT_TAGS["spec"]: self.spec.metadata.name,
                                      FORMAT_TAGS["fingerprint"]: resource.fingerprint,
                                      JOB_TAG: resource.desired["name"],
                                      # what decided this run, so `finetune runs` can say what the next one changed
                                      INPUTS_TAG: json.dumps(training_inputs(resource.desired), sort_keys=True)})
        return LocalTrainConfig(model=source, train_file=data_files["train"],
                                validation_file=data_files.get("validation") or data_files.get("test"),
                                output_dir=str(self.job_dir(resource.desired["name"])), parameters=params,
                                mlflow=mlflow)

    def _apply_job(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from finetune.backends.local import trainjob

        config = self._train_config(resource, ctx.data_files)
        self._write(Path(config.output_dir) / INPUTS_FILE, training_inputs(resource.desired))
        self._evaluation_settings(config.output_dir, ctx.data_files)
        ctx.record("launching", {"job": resource.desired["name"], "dir": config.output_dir})
        try:
            status = trainjob.launch(config)
        except (trainjob.JobError, ValueError) as exc:
            raise FinetuneError(f"training could not start: {exc}") from exc
        ctx.record("running", {"job": resource.desired["name"], "pid": status.pid})
        if ctx.detach and status.state.value != "Completed":  # the training process outlives this command
            return {"name": resource.desired["name"], "status": status.state.value, "pid": status.pid,
                    "detached": True}
        last: tuple[Any, ...] | None = None
        said_at = 0.0

        def on_progress(current) -> None:
            nonlocal last, said_at
            ctx.check_cancelled()
            progress = training_progress(current)
            shown = (progress.state, progress.phase, progress.step, progress.loss)
            if shown != last or time.monotonic() - said_at >= QUIET_SECONDS:
                ctx.report_training(progress)
                last, said_at = shown, time.monotonic()

        final = trainjob.wait(config.output_dir, poll=0.5, on_progress=on_progress)
        if final.state.value != "Completed":
            log = trainjob.paths(config.output_dir)["log"]
            raise FinetuneError(f"training ended {final.state.value}: {final.error or 'see the log'}",
                                hint=f"log: {log}; fix the cause and apply again (it resumes from a checkpoint)")
        return {"name": resource.desired["name"], "model_dir": final.model_dir, "run_id": final.mlflow_run_id,
                "metrics": final.metrics, **_measured(final.raw),
                **({"evaluation": final.evaluation} if final.evaluation else {})}

    def _evaluation_settings(self, output_dir: str, data_files: dict[str, str]) -> None:
        """What the job scores after training (read by its process); none without a test split or when off."""
        from finetune.backends.local.evaluate import SETTINGS_FILE, EvalSettings

        wanted = self.spec.evaluation
        if not wanted.enabled or not data_files.get("test"):
            (Path(output_dir) / SETTINGS_FILE).unlink(missing_ok=True)
            return
        EvalSettings(test_file=data_files["test"], max_rows=wanted.max_rows, max_new_tokens=wanted.max_new_tokens,
                     base_model=wanted.base_model, cache_dir=str(self.root / "evaluations")).save(output_dir)

    def _apply_model(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from finetune.backends.local import registry

        job = ctx.outputs.get("job.finetune", {})
        model_dir = job.get("model_dir")
        if not model_dir:
            raise FinetuneError("the training job produced no model folder")
        ctx.report(f"registering {resource.name} in the MLflow registry")
        version = registry.register_model(
            self.tracking_uri, resource.name, model_dir, run_id=job.get("run_id"),
            tags={FORMAT_TAGS["fingerprint"]: resource.fingerprint, FORMAT_TAGS["spec"]: self.spec.metadata.name,
                  JOB_TAG: str(job.get("name"))},
            description=resource.desired.get("description"), experiment_name=self.spec.experiment)
        return {"name": resource.name, "version": version}

    def _apply_endpoint(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        d = resource.desired
        record = self._read(self.endpoint_file(d["name"])) or {}
        record.update({"name": d["name"], "description": d["description"]})
        self._write(self.endpoint_file(d["name"]), record)
        return {"name": d["name"]}

    def _apply_deployment(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        from finetune.backends.local import registry, server

        d = resource.desired
        version = registered_model(ctx.outputs).get("version")
        name = d["model"].split("@")[0]
        if not version:
            raise FinetuneError(f"no registered version of {name} to serve")
        model_dir = registry.model_version_path(self.tracking_uri, name, str(version))
        state = self.server_file(d["endpoint"], d["name"])
        server.stop_server(state)  # an update replaces the running server
        ctx.report(f"starting a local server for {name} v{version}")
        try:
            info = server.start_server(model_dir, state, log_path=state.with_suffix(".log"))
        except server.ServerError as exc:
            raise FinetuneError(f"the local server did not start: {exc}",
                                hint=f"log: {state.with_suffix('.log')}") from exc
        record = self._read(state) or {}
        self._write(state, {**record, "model": f"{name}@{version}"})
        return {"name": d["name"], "url": info.url, "model": f"{name}@{version}"}

    def _apply_traffic(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        path = self.endpoint_file(resource.desired["endpoint"])
        record = self._read(path) or {}
        record["traffic"] = dict(resource.desired["traffic"])
        self._write(path, record)
        return {"traffic": record["traffic"]}

    def _apply_smoke_test(self, resource: Resource, change: Change, ctx: StepContext) -> dict[str, Any]:
        d = resource.desired
        request = sample_request(ctx.data_files.get("sample") or ctx.data_files.get("test"), d["row"], d["seed"],
                                 d["parameters"])
        ctx.report(f"asking: {request.question[:200]}")
        answer = self.invoke(d["endpoint"], d["deployment"], request.body())
        path = self.endpoint_file(d["endpoint"])
        record = self._read(path) or {}
        record["smoke_test"] = resource.fingerprint
        self._write(path, record)
        return {"question": request.question, "expected": request.expected, "answer": answer,
                "parameters": request.parameters}

    def invoke(self, endpoint: str, deployment: str | None, body: dict[str, Any]) -> str:
        from finetune.backends.local import server

        record = self._read(self.endpoint_file(endpoint))
        if record is None:
            raise FinetuneError(f"endpoint {endpoint} does not exist", hint="run `finetune apply` first")
        traffic = record.get("traffic") or {}
        target = deployment or (max(traffic, key=lambda k: traffic[k]) if traffic else None)
        if target is None:
            raise FinetuneError(f"endpoint {endpoint} routes no traffic", hint="pass --deployment")
        status = server.server_status(self.server_file(endpoint, target))
        if status.state != "alive":
            raise FinetuneError(f"the local server for {endpoint}/{target} is {status.state}",
                                hint="run `finetune apply` to restart it")
        conversation = body["input_data"]["input_string"][0]
        try:
            raw = server.score(status.info.url, conversation, body["input_data"]["parameters"])
        except server.ServerError as exc:
            raise FinetuneError(f"invoking {endpoint}/{target} failed: {exc}") from exc
        return parse_response(raw)

    # ---- destroy / status -----------------------------------------------------------------------------------------
    def owned(self, graph: Graph) -> dict[str, Observed]:
        """What this spec holds in its state folder: the endpoint record, model versions tagged with the spec, the
        prepared data (the spec's data cache)."""
        from finetune.backends.local import registry
        from finetune.dataprep import data_cache_dir

        found: dict[str, Observed] = {}
        for resource in graph.resources.values():
            if resource.kind == "endpoint" and self.endpoint_file(resource.name).exists():
                found[resource.address] = Observed(True, {"name": resource.name})
            elif resource.kind == "model" and (self.root / "mlflow.db").exists():
                for version in registry.list_model_versions(self.tracking_uri, resource.name):
                    if version.tags.get(FORMAT_TAGS["spec"]) == self.spec.metadata.name:
                        found[f"{resource.address}@{version.version}"] = Observed(
                            True, {"name": resource.name, "version": str(version.version)})
        cache = data_cache_dir(self.loaded)
        if cache.is_dir() and any(cache.iterdir()):
            found["data.prepared"] = Observed(True, {"name": "prepared data", "path": str(cache)})
        return found

    def destroy(self, address: str, observed: Observed, ctx: StepContext) -> None:
        from finetune.backends.local import registry, server

        kind = address.partition(".")[0]
        if kind in ("retire", "deployment"):
            state = self.server_file(observed.properties["endpoint"], observed.properties["name"])
            server.stop_server(state)
            state.unlink(missing_ok=True)
        elif kind == "endpoint":
            name = observed.properties["name"]
            for state in (self.root / "servers").glob(f"{name}--*.json"):  # every server of the endpoint
                server.stop_server(state)
                state.unlink(missing_ok=True)
            self.endpoint_file(name).unlink(missing_ok=True)
        elif kind == "model":
            registry.delete_model_versions(self.tracking_uri, observed.properties["name"],
                                           versions=[str(observed.properties["version"])])
        elif kind == "data":
            # the prepared files live in the spec's data cache; the next plan prepares them again
            shutil.rmtree(observed.properties["path"], ignore_errors=True)

    def where(self, outputs: dict[str, dict[str, Any]]) -> list[str]:
        """Where the results of an apply live, for the closing summary."""
        lines = []
        model = registered_model(outputs)
        if model:
            lines.append(f"model:    {model['name']} version {model['version']} in the MLflow registry "
                         f"{self.tracking_uri}")
        job = outputs.get("job.finetune") or {}
        if job.get("run_id"):
            lines.append(f"metrics:  MLflow run {job['run_id']} (`finetune status` draws the loss curve)")
        for address, out in outputs.items():
            if address.startswith("deployment.") and out.get("url"):
                lines.append(f"endpoint: {out['url']}/score (`finetune invoke` sends the smoke-test request)")
        return lines

    def runs(self, graph: Graph) -> RunsFound:
        """The spec's training runs from its MLflow store; deployed = what each live local server serves."""
        from finetune.backends.local import runs, server

        if self.spec.target.local.tracking_uri is None and not (self.root / "mlflow.db").exists():
            return RunsFound([], {}, [f"no MLflow store at {self.root / 'mlflow.db'} yet: nothing was trained"])
        model = next((r.name for r in graph.resources.values() if r.kind == "model"), None)
        found = runs.list_runs(self.tracking_uri, self.spec.experiment, self.spec.metadata.name, model)
        deployed = {}
        endpoint = next((r.name for r in graph.resources.values() if r.kind == "endpoint"), None)
        for state in sorted((self.root / "servers").glob(f"{endpoint}--*.json")) if endpoint else []:
            record = self._read(state) or {}
            if record.get("model") and server.server_status(state, check_health=False).state == "alive":
                deployed[f"deployment.{endpoint}/{state.stem.split('--', 1)[1]}"] = record["model"]
        return RunsFound(found, deployed)

    def status_extra(self, graph: Graph, observed: dict[str, Observed | None]) -> dict[str, Any]:
        """The loss curve of the training run: a PNG file and a terminal rendering."""
        from finetune.backends import lossplot
        from finetune.backends.local import registry, server

        extra: dict[str, Any] = {}
        for resource in graph.resources.values():
            if resource.kind == "deployment":
                status = server.server_status(self.server_file(resource.desired["endpoint"], resource.name))
                if status.state == "dead":
                    extra.setdefault("warnings", []).append(
                        f"{resource.address}: the local server died ({status.detail}); `finetune apply` restarts it")
        job = observed.get("job.finetune")
        if job is not None and job.details.get("evaluation"):
            extra["evaluation"] = job.details["evaluation"]
        run_id = job.details.get("run_id") if job else None
        if run_id:
            series = lossplot.loss_series(registry.get_run_metrics(self.tracking_uri, run_id))
            if series:
                png = self.job_dir(job.details["name"]) / "loss.png"
                lossplot.write_png(series, png)
                extra["loss_png"] = str(png)
                extra["loss_plot"] = lossplot.ascii_plot(series, ascii_only=True).splitlines()
        return extra


def _measured(status: dict[str, Any]) -> dict[str, Any]:
    """What the finished run measured, for apply's estimate-vs-actual line: trainer seconds, tokens, tokens/s and
    the whole job's wall time (imports, loading and saving included)."""
    found = {k: status[k] for k in ("train_seconds", "train_tokens", "tokens_per_second") if status.get(k) is not None}
    try:
        found["job_seconds"] = round((datetime.fromisoformat(status["ended_at"])
                                      - datetime.fromisoformat(status["started_at"])).total_seconds(), 1)
    except (KeyError, TypeError, ValueError):
        pass
    return found


def training_progress(status: Any) -> TrainingProgress:
    """A local job's status file (trainjob.JobStatus) as progress: its phase until the first step, then the step,
    the total, the latest loss."""
    state = JOB_STATES.get(status.state.value) or "Starting"
    running = state == "Running"
    phase = (status.raw.get("phase") or "") if running else ""
    if state == "Starting":
        phase = "starting the training process"
    return TrainingProgress(state="Running" if state == "Starting" else state, phase=phase,
                            step=status.step if status.raw.get("max_steps") else None,
                            total_steps=status.raw.get("max_steps"), loss=status.metrics.get("loss"))
