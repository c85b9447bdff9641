"""Semantic checks that need the catalog: names, SKUs, allow lists, component parameters, traffic, paths.

They run offline and instantly. Each finding is a Diagnostic located at the offending value.
"""

from __future__ import annotations

import difflib
from pathlib import Path as FsPath

from finetune import catalog
from finetune.catalog.params import MANAGED_INPUTS, ParameterError, normalize, unknown_parameter_hint
from finetune.errors import Diagnostics
from finetune.spec.models import LocalSource, Spec, TargetKind
from finetune.spec.naming import ENDPOINT_SUFFIX_LEN, VERSION_SUFFIX_LEN
from finetune.spec.yaml_source import Path, SourceMap, dotted


class _Checker:
    def __init__(self, spec: Spec, source: SourceMap, diags: Diagnostics, needs_data: bool = True,
                 broken: frozenset[str] = frozenset()) -> None:
        self.spec = spec
        self.source = source
        self.diags = diags
        self.needs_data = needs_data
        self.broken = broken  # top-level sections the schema refused: checks that read them are skipped

    def ok(self, *sections: str) -> bool:
        return not self.broken.intersection(sections)

    def error(self, path: Path, message: str, hint: str = "", *, key: bool = False) -> None:
        self.diags.error(message, path=dotted(path), hint=hint, location=self.source.locate(path, key=key))

    def warning(self, path: Path, message: str, hint: str = "", *, key: bool = False) -> None:
        self.diags.warning(message, path=dotted(path), hint=hint, location=self.source.locate(path, key=key))

    # Each check and the sections it reads.
    CHECKS = (
        ("names", ()),  # guards its parts itself
        ("target", ("target", "model", "compute", "endpoint")),
        ("registry_model", ("target", "model")),
        ("compute", ("compute", "target", "model", "finetune")),
        ("parameters", ("finetune",)),
        ("endpoint", ("endpoint", "target", "model")),
        ("data", ("data",)),
        ("smoke_test", ("smoke_test", "endpoint", "data")),
        ("generation_parameters", ("smoke_test",)),
    )

    def run(self) -> None:
        for check, sections in self.CHECKS:
            if self.ok(*sections):
                getattr(self, check)()

    # -- names --------------------------------------------------------------------------------------------------------
    def name(self, kind: str, value: str, path: Path, *, reserve: int = 0) -> None:
        rule = catalog.naming_rule(kind)
        problem = catalog.name_problem(kind, value)
        if problem:
            self.error(path, problem)
        elif reserve and len(value) > rule.max - reserve:
            self.error(path, f"'{value}' is {len(value)} characters; with the suffix finetune appends it would "
                             f"exceed {rule.max}", f"shorten it to at most {rule.max - reserve} characters")

    def names(self) -> None:
        spec = self.spec
        if self.ok("metadata"):
            self.name("asset", spec.metadata.name, ("metadata", "name"))
        if self.ok("registered_model"):
            self.name("asset", spec.registered_model.name, ("registered_model", "name"))
        if self.ok("finetune", "metadata"):
            self.name("experiment", spec.experiment, ("finetune", "experiment"))
        if spec.compute and self.ok("compute"):
            self.name("compute", spec.compute.name, ("compute", "name"))
        if spec.endpoint and self.ok("endpoint"):
            reserve = ENDPOINT_SUFFIX_LEN if spec.endpoint.unique_suffix else 0
            self.name("endpoint", spec.endpoint.name, ("endpoint", "name"), reserve=reserve)
            seen: set[str] = set()
            version_suffix = VERSION_SUFFIX_LEN if spec.endpoint.rollout == "blue_green" else 0
            for i, deployment in enumerate(spec.endpoint.deployments):
                self.name("deployment", deployment.name, ("endpoint", "deployments", i, "name"),
                          reserve=version_suffix)
                if deployment.name in seen:
                    self.error(("endpoint", "deployments", i, "name"), f"deployment '{deployment.name}' is defined "
                               "twice", "give each deployment its own name")
                seen.add(deployment.name)

    # -- target -------------------------------------------------------------------------------------------------------
    def target(self) -> None:
        spec = self.spec
        model = spec.model
        if spec.target.kind is TargetKind.AZUREML:
            if model.name is None:
                self.error(("model",), f"the azureml target fine-tunes a registry model; {model.reference} is a "
                           "local model source", "give `registry:` and `name:` (e.g. azureml / Phi-3-mini-4k-instruct)")
            elif model.registry is None:
                self.error(("model", "name"), "a registry model needs `registry:`", "add `registry: azureml`")
            if spec.compute is None:
                self.error(("compute",), "the azureml target needs a `compute:` cluster for training",
                           "add compute: {name: gpu-cluster, sku: Standard_NC24ads_A100_v4}")
            if spec.endpoint:
                for i, deployment in enumerate(spec.endpoint.deployments):
                    if deployment.sku is None:
                        self.error(("endpoint", "deployments", i), f"deployment '{deployment.name}' needs `sku:` on "
                                   "the azureml target", "e.g. sku: Standard_NC24ads_A100_v4")
        elif model.name is not None:
            self.error(("model", "name"), "the local target cannot train an Azure ML registry model",
                       "use `hf: <model id>`, `path: <folder>` or `tiny: {}` for local runs")
        elif model.quantization and str(spec.finetune.parameters.get("apply_lora", "true")).lower() == "false":
            self.error(("model", "quantization"), "a 4-bit base cannot be fully fine-tuned: QLoRA trains LoRA "
                       "adapters on it", "remove `apply_lora: false`, or remove `quantization`")

    def registry_model(self) -> None:
        """A registry model name the catalog does not know but nearly matches is a typo, caught before any call."""
        model = self.spec.model
        if self.spec.target.kind is not TargetKind.AZUREML or model.name is None or model.registry is None:
            return
        if model.registry not in catalog.catalog_registries() or catalog.known_model(model.registry, model.name):
            return
        close = catalog.similar_model(model.registry, model.name)
        if close:
            self.error(("model", "name"), f"unknown model '{model.name}' in registry {model.registry}",
                       f"did you mean '{close}'?")
        else:
            self.warning(("model", "name"), f"model '{model.name}' is not in the offline catalog of registry "
                         f"{model.registry}; plan checks that the registry has it")

    # -- compute ------------------------------------------------------------------------------------------------------
    def compute(self) -> None:
        compute = self.spec.compute
        if compute is None or self.spec.target.kind is not TargetKind.AZUREML:
            return
        path = ("compute", "sku")
        sku = catalog.find_sku(compute.sku)
        known = self._known_model()
        usable = catalog.usable_skus(known.finetune_skus) if known and known.finetune_skus else []
        gpu_hint = f"use {_one_of(usable)}" if usable else "use a GPU size such as Standard_NC24ads_A100_v4"
        if sku is None:
            close = catalog.similar_sku(compute.sku)
            if close:
                self.error(path, f"unknown VM size '{compute.sku}'", f"did you mean '{close}'?")
                return
            else:
                self.warning(path, f"VM size '{compute.sku}' is not in the offline catalog; GPUs and price are "
                             "checked against the workspace at plan time")
        elif sku.gpu_type == "K80":
            self.error(path, f"{sku.name} has K80 GPUs, which Azure retired and fine-tuning does not support",
                       f"use {sku.replacement}")
        elif sku.is_retired:
            replacement = f"use {sku.replacement} ({_describe(sku.replacement)})"
            self.error(path, f"{sku.name} was retired on {sku.retired}", replacement)
        elif not sku.gpus:
            self.error(path, f"{sku.name} has no GPU ({sku.describe}); fine-tuning needs GPUs", gpu_hint)
        elif sku.gpus < 1:
            self.error(path, f"{sku.name} has no full GPU ({sku.describe}); fine-tuning needs GPUs", gpu_hint)
        if known and known.finetune_skus and (sku is None or (not sku.is_retired and sku.gpus >= 1)):
            allowed = {s.lower() for s in known.finetune_skus}
            if compute.sku.lower() not in allowed:
                self.error(path, f"{compute.sku} is not in {known.name}'s fine-tune allow list",
                           f"use {_one_of(usable)}" if usable else "none of its allow-listed sizes is still "
                           "offered: pick another model")
        explicit = self.spec.finetune.parameters.get("number_of_gpu_to_use_finetuning")
        if sku is not None and sku.gpus >= 1 and explicit is not None:
            try:
                count = int(explicit)
            except (TypeError, ValueError):
                count = None
            if count is not None and count != int(sku.gpus):
                self.error(("finetune", "parameters", "number_of_gpu_to_use_finetuning"),
                           f"{count} GPUs per node, but {sku.name} has {sku.gpus:g}",
                           "remove it: finetune derives it from compute.sku")

    def _known_model(self) -> catalog.KnownModel | None:
        model = self.spec.model
        return catalog.known_model(model.registry, model.name) if model.name else None

    # -- parameters ---------------------------------------------------------------------------------------------------
    def parameters(self) -> None:
        component = self.spec.finetune.component
        schema = catalog.component_schema(component.name, component.version)
        if schema is None:
            known = catalog.component_schema(component.name)
            if known is not None:
                self.warning(("finetune", "component", "version"), f"{component.name} {component.version} is not in "
                             f"the offline catalog; parameters are checked against {known.version}")
                schema = known
            else:
                self.warning(("finetune", "component", "name"), f"component '{component.name}' is not in the "
                             "offline catalog; its parameters are not checked offline")
                return
        for name, value in self.spec.finetune.parameters.items():
            path = ("finetune", "parameters", name)
            if name in MANAGED_INPUTS:
                self.error(path, f"'{name}' is set by finetune", MANAGED_INPUTS[name], key=True)
            elif name not in schema.inputs:
                self.error(path, f"unknown parameter '{name}' for {schema.name} {schema.version}",
                           unknown_parameter_hint(name, schema), key=True)
            else:
                try:
                    normalize(schema.inputs[name], value)
                except ParameterError as exc:
                    self.error(path, f"invalid value for '{name}': {exc}", exc.hint)

    # -- endpoint -----------------------------------------------------------------------------------------------------
    def endpoint(self) -> None:
        endpoint = self.spec.endpoint
        if endpoint is None:
            return
        names = [d.name for d in endpoint.deployments]
        traffic = self.spec.traffic
        if endpoint.traffic is None and len(names) > 1:
            self.error(("endpoint",), "several deployments but no `traffic:`", f"add traffic: {{{names[0]}: 100}}")
        for name, share in (endpoint.traffic or {}).items():
            if name not in names:
                self.error(("endpoint", "traffic", name), f"traffic names deployment '{name}', which is not defined",
                           f"deployments: {', '.join(names)}", key=True)
            if not 0 <= share <= 100:
                self.error(("endpoint", "traffic", name), f"traffic share {share} is outside 0..100")
        if traffic and sum(traffic.values()) != 100:
            self.error(("endpoint", "traffic"), f"traffic shares sum to {sum(traffic.values())}, not 100",
                       "make the percentages add up to 100")
        if self.spec.target.kind is not TargetKind.AZUREML:
            return
        known = self._known_model()
        for i, deployment in enumerate(endpoint.deployments):
            if deployment.sku is None:
                continue
            path = ("endpoint", "deployments", i, "sku")
            sku = catalog.find_sku(deployment.sku)
            # Suggestions are sizes the deployment could really use: allowed, managed-online and not retired.
            usable = catalog.usable_skus(known.inference_skus, managed_online=True) if known and \
                known.inference_skus else []
            if sku is None:
                close = catalog.similar_sku(deployment.sku, managed_online=True)
                if close:
                    self.error(path, f"unknown VM size '{deployment.sku}'", f"did you mean '{close}'?")
                continue
            if sku.is_retired:
                replacement = sku.replacement if not usable or sku.replacement in usable else usable[0]
                self.error(path, f"{sku.name} was retired on {sku.retired}", f"use {replacement}")
                continue
            if not sku.managed_online:
                self.error(path, f"{sku.name} is not offered for managed online endpoints",
                           f"use {_one_of(usable)}" if usable else "pick a size from the managed online endpoint "
                           "SKU list, e.g. Standard_NC24ads_A100_v4")
            if known and known.inference_skus and deployment.sku.lower() not in {s.lower() for s in
                                                                                  known.inference_skus}:
                self.error(path, f"{deployment.sku} is not in {known.name}'s inference allow list",
                           f"use {_one_of(usable)}" if usable else "none of its allow-listed sizes is still "
                           "offered: pick another model")

    # -- data ---------------------------------------------------------------------------------------------------------
    def data(self) -> None:
        source = self.spec.data.source
        if not isinstance(source, LocalSource):
            return
        base = FsPath(self.source.file).parent
        # Commands that need only the target (destroy, status, invoke) must work with the data gone: a warning.
        report = self.error if self.needs_data else self.warning
        if source.path is not None:
            if not (base / source.path).exists():
                report(("data", "source", "path"), f"{source.path} does not exist (relative to the spec file)",
                       "fix the path or create the data")
            return
        for split, files in (source.files or {}).items():
            for i, file in enumerate([files] if isinstance(files, str) else files):
                if not (base / file).exists():
                    where = ("data", "source", "files", split) + (() if isinstance(files, str) else (i,))
                    report(where, f"{file} does not exist (relative to the spec file)", "fix the path")
            if split not in self._source_splits():
                self.warning(("data", "source", "files", split), f"source split '{split}' is not used by "
                             "data.splits")

    def _source_splits(self) -> set[str]:
        splits = self.spec.data.splits
        return {s for s in (splits.train, splits.validation, splits.test, splits.sample) if s}

    def generation_parameters(self) -> None:
        """smoke_test.parameters is free-form (it is sent as is); known options are checked, unknown ones warned."""
        options = catalog.generation_options()
        for name, value in self.spec.smoke_test.parameters.items():
            path = ("smoke_test", "parameters", name)
            option = options.get(name)
            if option is None:
                close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
                self.warning(path, f"'{name}' is not a known generation option; it is sent as is",
                             f"did you mean '{close[0]}'?" if close else f"known: {', '.join(options)}", key=True)
                continue
            problem = _generation_problem(option, value)
            if problem:
                self.error(path, f"invalid value for '{name}': {problem}")

    def smoke_test(self) -> None:
        spec = self.spec
        if spec.endpoint is None or not spec.smoke_test.enabled:
            return
        if spec.data.splits.sample is None and spec.data.splits.test is None:
            self.error(("smoke_test",), "the smoke test needs a sample conversation",
                       "set data.splits.sample (or data.splits.test), or smoke_test.enabled: false")


def _generation_problem(option: catalog.GenerationOption, value: object) -> str | None:
    """Why `value` does not fit the generation option, or None."""
    if option.type == "boolean":
        return None if isinstance(value, bool) else f"{value!r} is not true or false"
    if option.type == "string":
        return None if isinstance(value, str) else f"{value!r} is not text"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{value!r} is not a number"
    if option.type == "integer" and value != int(value):
        return f"{value!r} is not a whole number"
    if option.min is not None and value < option.min:
        return f"{value!r} is below the minimum {option.min:g}"
    if option.max is not None and value > option.max:
        return f"{value!r} is above the maximum {option.max:g}"
    return None


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"one of: {', '.join(names)}"


def _describe(sku_name: str | None) -> str:
    sku = catalog.find_sku(sku_name) if sku_name else None
    return sku.describe if sku else "see the catalog"


def check_spec(spec: Spec, source: SourceMap, diags: Diagnostics, *, needs_data: bool = True,
               broken: set[str] | frozenset[str] = frozenset()) -> None:
    """Semantic checks. `needs_data=False`: the command reads only the target, so missing data only warns.
    `broken`: top-level sections the schema refused (None in `spec`); the checks that read them are skipped."""
    _Checker(spec, source, diags, needs_data, frozenset(broken)).run()
