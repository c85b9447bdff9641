"""The spec format `apiVersion: finetune/v1`, `kind: FineTune`, as pydantic models.

These models check shape and types only; rules that need the catalog (SKUs, allow lists, component inputs, naming)
live in `finetune.spec.checks`. Field descriptions end up in the published JSON Schema, so editors can show them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, model_validator

Scalar = str | int | float | bool
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # what numpy and torch accept as a seed


def _version_text(value: Any) -> Any:
    """YAML reads `version: 15` as a number; versions are strings to Azure ML."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Version = Annotated[str, BeforeValidator(_version_text),
                    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TargetKind(StrEnum):
    AZUREML = "azureml"
    LOCAL = "local"


class Metadata(_Model):
    name: str = Field(description="Spec name: identifies what this spec manages (tags, lock, stable name suffix).")
    description: str | None = None


class AzureMLWorkspace(_Model):
    subscription_id: str | None = Field(None, description="Azure subscription id; default: $AZURE_SUBSCRIPTION_ID "
                                        "or config.json")
    resource_group: str | None = Field(None, description="Resource group; default: $AZURE_RESOURCE_GROUP or "
                                       "config.json")
    workspace: str | None = Field(None, description="Workspace name; default: $AZUREML_WORKSPACE_NAME or config.json")
    config_file: str | None = Field(None, description="Path of a config.json as `MLClient.from_config` reads it; "
                                    "default: searched from the current folder upwards")


class LocalSettings(_Model):
    state_dir: str = Field(".finetune", description="Where local state lives (data cache, checkpoints, MLflow db, "
                           "server pid), relative to the spec file.")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default: sqlite under state_dir")


class Target(_Model):
    kind: TargetKind = Field(TargetKind.LOCAL, description="`local` (default, no cloud) or `azureml`")
    azureml: AzureMLWorkspace = AzureMLWorkspace()
    local: LocalSettings = LocalSettings()


class TinyModel(_Model):
    """A small causal LM built from a config with a tokenizer trained on the data: the whole lifecycle offline."""

    layers: int = Field(2, ge=1, le=48)
    hidden_size: int = Field(128, ge=16, le=8192)
    heads: int = Field(4, ge=1, le=128)
    vocab_size: int = Field(2000, ge=256, le=200000)
    seed: Seed = 0


class BaseModelRef(_Model):
    """The model to fine-tune: a registry model (Azure ML) or, for the local target, an HF id, a path or a tiny one."""

    registry: str | None = Field(None, description="Azure ML registry, e.g. `azureml`")
    name: str | None = Field(None, description="Model name in the registry, e.g. `Phi-3-mini-4k-instruct`")
    version: Version | None = Field(None, description="Exact version (pinned); give either version or label")
    label: str | None = Field(None, description="Floating label such as `latest`, resolved and shown at plan time")
    hf: str | None = Field(None, description="Hugging Face model id (local target; needs network or a cache)")
    path: str | None = Field(None, description="Local model folder (local target)")
    tiny: TinyModel | None = Field(None, description="Build a tiny model from a config (local target, offline)")
    quantization: Literal["4bit"] | None = Field(
        None, description="`4bit`: load the `hf`/`path` base in 4 bits and train LoRA on it (QLoRA; local target, "
        "needs a CUDA GPU and bitsandbytes)")

    @model_validator(mode="after")
    def _one_source(self) -> BaseModelRef:
        sources = [s for s in ("name", "hf", "path", "tiny") if getattr(self, s) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one model source: `name` (with `registry`), `hf`, `path` or `tiny`")
        if self.name is not None:
            if self.version is not None and self.label is not None:
                raise ValueError("give either `version` or `label`, not both")
        elif any(v is not None for v in (self.registry, self.version, self.label)):
            raise ValueError("`registry`, `version` and `label` only apply to a registry model given by `name`")
        if self.quantization is not None and self.hf is None and self.path is None:
            raise ValueError("`quantization` applies to a `hf` or `path` model (the local target's QLoRA)")
        return self

    @property
    def reference(self) -> str:
        if self.name is not None:
            pin = f"@{self.version}" if self.version else f"@{self.label or 'latest'}"
            return f"{self.registry or 'workspace'}/{self.name}{pin}"
        if self.hf:
            return f"hf:{self.hf}"
        if self.path:
            return f"path:{self.path}"
        return "tiny"


class HubSource(_Model):
    hf: str = Field(description="Hugging Face dataset id, e.g. `HuggingFaceH4/ultrachat_200k`")
    revision: str | None = Field(None, description="Commit, tag or branch; pin it for reproducible data")
    config: str | None = Field(None, description="Dataset configuration (subset) name")


class LocalSource(_Model):
    path: str | None = Field(None, description="A file or a folder with one file (or subfolder of shards) per split, "
                             "relative to the spec file")
    files: dict[str, str | list[str]] | None = Field(None, description="Explicit source split -> file(s)")
    format: Literal["jsonl", "json", "parquet", "csv"] | None = Field(None, description="Default: from the extension")

    @model_validator(mode="after")
    def _one_form(self) -> LocalSource:
        if (self.path is None) == (self.files is None):
            raise ValueError("give either `path` or `files`")
        return self


class SplitMap(_Model):
    train: str = Field(description="Source split used for training, e.g. `train_sft`")
    validation: str | None = Field(None, description="Source split used for validation")
    test: str | None = Field(None, description="Source split used for test, e.g. `test_sft`")
    sample: str | None = Field(None, description="Source split the smoke-test request is taken from, e.g. `test_gen`")


class SplitPercentages(_Model):
    train: float | None = Field(None, gt=0, le=100)
    validation: float | None = Field(None, gt=0, le=100)
    test: float | None = Field(None, gt=0, le=100)
    sample: float | None = Field(None, gt=0, le=100)


class Sampling(_Model):
    method: Literal["head", "random"] = Field("head", description="`head`: the first N% (what the notebook does); "
                                              "`random`: a seeded random N%")
    seed: Seed = 42


def _source_kind(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "hub" if isinstance(value, HubSource) else "local"
    return "hub" if isinstance(value, dict) and "hf" in value else "local"


def _percentage_kind(value: Any) -> str:
    return "per_role" if isinstance(value, dict | SplitPercentages) else "all"


class DataSpec(_Model):
    source: Annotated[
        Annotated[HubSource, Tag("hub")] | Annotated[LocalSource, Tag("local")], Discriminator(_source_kind)
    ] = Field(description="`hf:` a hub dataset, or `path:`/`files:` local files")
    splits: SplitMap
    split_percentage: Annotated[
        Annotated[float, Field(gt=0, le=100), Tag("all")] | Annotated[SplitPercentages, Tag("per_role")],
        Discriminator(_percentage_kind),
    ] = Field(
        100, description="Percentage of each source split to keep, in (0, 100]; a number or per role")
    sampling: Sampling = Sampling()
    max_rows: int | None = Field(None, ge=1, description="Cap on rows per split after sampling")
    validation_from_train: float | None = Field(None, gt=0, lt=1, description="Carve this fraction of train out as "
                                                "the validation split")
    invalid_rows: Literal["error", "drop"] = Field("error", description="What to do with rows that are not valid chat")

    @model_validator(mode="after")
    def _validation_once(self) -> DataSpec:
        if self.validation_from_train is not None and self.splits.validation is not None:
            raise ValueError("give either `splits.validation` or `validation_from_train`, not both")
        return self


class ComputeSpec(_Model):
    name: str = Field(description="Compute cluster name (reused if it exists)")
    sku: str = Field(description="VM size, e.g. `Standard_NC24ads_A100_v4`; must have GPUs")
    tier: Literal["dedicated", "low_priority"] = "dedicated"
    min_instances: int = Field(0, ge=0)
    max_instances: int = Field(2, ge=1)
    idle_time_before_scale_down: int = Field(120, ge=0, description="Seconds idle before nodes are released")

    @model_validator(mode="after")
    def _bounds(self) -> ComputeSpec:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances must not exceed max_instances")
        return self


class ComponentRef(_Model):
    registry: str = "azureml"
    name: str = "chat_completion_pipeline"
    version: Version | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _pin(self) -> ComponentRef:
        if self.version is not None and self.label is not None:
            raise ValueError("give either `version` or `label`, not both")
        return self


class FinetuneSpec(_Model):
    component: ComponentRef = ComponentRef()
    parameters: dict[str, Scalar] = Field(default_factory=dict, description="Inputs of the fine-tuning component, "
                                          "e.g. num_train_epochs, learning_rate, apply_lora")
    model_defaults: Literal["under", "over", "ignore"] = Field(
        "under", description="How the model's `model_specific_defaults` apply: `under` your parameters (default), "
        "`over` them (the notebook's behaviour), or `ignore`d")
    num_nodes: int = Field(1, ge=1, description="Nodes used for fine-tuning (num_nodes_finetune)")
    force_rerun: bool = False
    continue_on_step_failure: bool = False
    display_name: str | None = None
    experiment: str | None = Field(None, description="Experiment name; default: finetune-<metadata.name>")


class RegisteredModelSpec(_Model):
    name: str = Field(description="Name of the fine-tuned model in the workspace (or MLflow) registry")
    description: str | None = None
    version: Literal["auto"] | Version = Field("auto", description="`auto`: the next integer version, created once per "
                                           "training run; or a fixed version string")


class LivenessProbe(_Model):
    initial_delay: int = Field(600, ge=1, description="Seconds before the first probe (large models load slowly)")
    period: int = Field(10, ge=1)
    timeout: int = Field(2, ge=1)
    failure_threshold: int = Field(30, ge=1)
    success_threshold: int = Field(1, ge=1)


class DeploymentSpec(_Model):
    name: str
    sku: str | None = Field(None, description="Instance type, e.g. `Standard_NC24ads_A100_v4` (azureml target)")
    instance_count: int = Field(1, ge=1, le=50)
    liveness_probe: LivenessProbe = LivenessProbe()
    request_timeout_ms: int = Field(90000, ge=1, le=180000, description="Per-request timeout; the service max is "
                                    "180000")
    max_concurrent_requests_per_instance: int = Field(1, ge=1)


class EndpointSpec(_Model):
    name: str = Field(description="Endpoint name, unique per Azure region")
    unique_suffix: bool = Field(False, description="Append a stable suffix derived from the workspace and spec name, "
                                "so the name is unique in the region yet the same on every apply")
    auth_mode: Literal["key", "aml_token"] = "key"
    description: str | None = None
    deployments: list[DeploymentSpec] = Field(min_length=1)
    traffic: dict[str, int] | None = Field(None, description="Deployment name -> percent; must sum to 100. Default: "
                                           "100 to the only deployment")
    prevent_destroy: bool = Field(False, description="Refuse `finetune destroy` of this endpoint")
    rollout: Literal["in_place", "blue_green"] = Field(
        "in_place", description="How a newly trained model reaches the endpoint: `in_place` updates each deployment; "
        "`blue_green` creates a new deployment per model version (<name>-v<version>), smoke-tests it, then moves the "
        "traffic and removes the old one")


class SmokeTestSpec(_Model):
    enabled: bool = True
    row: Annotated[int, Field(ge=0)] | Literal["random"] = Field(
        0, description="Which row of the sample split to send (index or `random`)")
    seed: Seed = 42
    parameters: dict[str, Scalar] = Field(default_factory=lambda: {"temperature": 0.6, "top_p": 0.9,
                                                                   "do_sample": True, "max_new_tokens": 200})


class BudgetSpec(_Model):
    """Spending limits checked by every plan: a plan whose estimate goes over one is blocked (exit 3)."""

    max_training_usd: float | None = Field(None, ge=0, description="Most a training run may cost (USD, list "
                                           "price): blocked when the high end of the estimate is above it")
    max_endpoint_usd_per_day: float | None = Field(None, ge=0, description="Most the endpoint's deployments may "
                                                   "cost per day (USD, list price x 24 h)")


class EvaluationSpec(_Model):
    enabled: bool = Field(True, description="Score the trained model on the test split after training (local "
                          "target): loss, perplexity, and generated answers against the expected ones (rougeL, "
                          "exact_match)")
    max_rows: int = Field(50, ge=1, le=100000, description="Test rows scored (the first N)")
    max_new_tokens: int = Field(64, ge=1, le=1024, description="Longest generated answer (greedy decoding)")
    base_model: bool = Field(True, description="Also score the base model (once per base model, test rows and "
                             "settings; cached), so the gain from fine-tuning shows")


class Spec(_Model):
    """A fine-tuning lifecycle: base model, data, compute, training, registered model, endpoint, smoke test."""

    api_version: Literal["finetune/v1"] = Field(alias="apiVersion")
    kind: Literal["FineTune"]
    metadata: Metadata
    vars: dict[str, Any] = Field(default_factory=dict, description="Template variables: `{{ vars.name }}`")
    target: Target = Target()
    model: BaseModelRef
    data: DataSpec
    compute: ComputeSpec | None = Field(None, description="Training cluster (azureml target)")
    finetune: FinetuneSpec = FinetuneSpec()
    registered_model: RegisteredModelSpec
    endpoint: EndpointSpec | None = None
    smoke_test: SmokeTestSpec = SmokeTestSpec()
    budget: BudgetSpec | None = Field(None, description="Spending limits: a plan over one is blocked")
    evaluation: EvaluationSpec = EvaluationSpec()

    @property
    def experiment(self) -> str:
        return self.finetune.experiment or f"finetune-{self.metadata.name}"

    @property
    def traffic(self) -> dict[str, int]:
        if self.endpoint is None:
            return {}
        if self.endpoint.traffic is not None:
            return dict(self.endpoint.traffic)
        if len(self.endpoint.deployments) == 1:
            return {self.endpoint.deployments[0].name: 100}
        return {}
