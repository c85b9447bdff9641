"""Offline facts the validator and planner rely on: VM sizes, GPU speeds, component inputs, known models, naming rules.

The data files live in `finetune/catalog/data/` (sources in SOURCES.md); this module only loads and looks up.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any


def _read(name: str) -> str:
    return resources.files("finetune.catalog").joinpath("data", name).read_text(encoding="utf-8")


# ---- VM sizes -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sku:
    name: str
    family: str
    vcpus: int
    ram_gib: float
    gpus: float
    gpu_type: str
    gpu_mem_gb: float | None
    usd_per_hour: float | None
    managed_online: bool
    skip_reservation: bool
    retired: date | None
    replacement: str | None

    @property
    def is_retired(self) -> bool:
        return self.retired is not None and self.retired <= date.today()

    @property
    def describe(self) -> str:
        if not self.gpus:
            return f"{self.vcpus} vCPU, {self.ram_gib:g} GiB, no GPU"
        gpus = f"{self.gpus:g}" if self.gpus >= 1 else f"1/{round(1 / self.gpus)}"
        return f"{gpus} x {self.gpu_type} {self.gpu_mem_gb:g} GB, {self.vcpus} vCPU, {self.ram_gib:g} GiB"


@cache
def _skus() -> dict[str, Sku]:
    table: dict[str, Sku] = {}
    for size in vm_sizes_document()["value"]:
        ours = size["finetune"]
        prices = (size.get("estimatedVMPrices") or {}).get("values") or []
        sku = Sku(
            name=size["name"], family=size["family"], vcpus=int(size["vCPUs"]), ram_gib=float(size["memoryGB"]),
            gpus=float(ours.get("gpuFraction") or size["gpus"]), gpu_type=ours["gpuType"] or "",
            gpu_mem_gb=ours["gpuMemoryGB"], usd_per_hour=prices[0]["retailPrice"] if prices else None,
            managed_online=ours["managedOnline"], skip_reservation=ours["skipReservation"],
            retired=date.fromisoformat(ours["retired"]) if ours["retired"] else None,
            replacement=ours["replacement"],
        )
        table[sku.name.lower()] = sku
    return table


@cache
def vm_sizes_document() -> dict[str, Any]:
    """`vm_sizes.json`: the region's vmSizes list in the REST shape, each size with finetune's fields under
    `finetune` (GPU model, managed-online support, retirement, sources)."""
    return json.loads(_read("vm_sizes.json"))


def find_sku(name: str) -> Sku | None:
    """Look a VM size up; Azure treats size names case-insensitively."""
    return _skus().get(name.lower())


def all_skus() -> list[Sku]:
    return list(_skus().values())


def usable_skus(names: Iterable[str], *, managed_online: bool = False) -> list[str]:
    """The sizes of `names` that can still be used: not retired (and offered for managed online endpoints when
    `managed_online`). Sizes the catalog does not know are kept: nothing says they are unusable."""
    kept = []
    for name in names:
        sku = find_sku(name)
        if sku is None or not (sku.is_retired or (managed_online and not sku.managed_online)):
            kept.append(sku.name if sku else name)
    return kept


def similar_sku(name: str, *, managed_online: bool = False) -> str | None:
    """The closest usable size name (never a retired one) to a name the catalog does not know."""
    lowered = {n.lower(): n for n in usable_skus((s.name for s in all_skus()), managed_online=managed_online)}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


# ---- GPU speeds (for the training-time estimate) ----------------------------------------------------------------

@dataclass(frozen=True)
class GpuPerformance:
    name: str  # the catalog's key: a GPU type, or type@memory where a type comes in variants (H100@94 = NVL)
    half_tflops: float  # peak dense 16-bit tensor rate (precision 16)
    fp32_tflops: float  # peak FP32 rate (precision 32)
    source: str


@cache
def _gpu_data() -> dict[str, Any]:
    return json.loads(_read("gpus.json"))


def gpu_performance(gpu_type: str, gpu_mem_gb: float | None = None) -> GpuPerformance | None:
    """Peak TFLOP/s of one GPU of this type (the variant with this memory size first, e.g. H100 NVL at 94 GB)."""
    table = _gpu_data()["gpus"]
    for key in ([f"{gpu_type}@{gpu_mem_gb:g}"] if gpu_mem_gb else []) + [gpu_type]:
        if key in table:
            entry = table[key]
            return GpuPerformance(key, float(entry["half"]), float(entry["fp32"]), entry["source"])
    return None


def training_assumptions() -> dict[str, Any]:
    """Utilization range, FLOPs per token, multi-GPU efficiency and fixed overhead, each with its reasoning."""
    return _gpu_data()["training"]


# ---- components -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ComponentInput:
    name: str
    type: str  # string, integer, number, boolean, uri_file, mlflow_model, ...
    default: Any = None
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    optional: bool = True
    description: str = ""

    @property
    def is_asset(self) -> bool:
        return self.type not in ("string", "integer", "number", "boolean")


@dataclass(frozen=True)
class ComponentSchema:
    name: str
    version: str
    inputs: dict[str, ComponentInput]
    outputs: dict[str, str]


@cache
def _components() -> dict[str, dict[str, ComponentSchema]]:
    raw = json.loads(_read("components.json"))["components"]
    result: dict[str, dict[str, ComponentSchema]] = {}
    for name, versions in raw.items():
        for version, body in versions.items():
            inputs = {
                key: ComponentInput(name=key, type=v["type"], default=v.get("default"),
                                    enum=tuple(str(e) for e in v["enum"]) if "enum" in v else None,
                                    min=v.get("min"), max=v.get("max"), optional=v.get("optional", False),
                                    description=v.get("description", ""))
                for key, v in body["inputs"].items()
            }
            outputs = {k: o["type"] for k, o in body["outputs"].items()}
            result.setdefault(name, {})[version] = ComponentSchema(name, version, inputs, outputs)
    return result


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", version))


def component_schema(name: str, version: str | None = None) -> ComponentSchema | None:
    """The component's inputs at `version`, or the newest version the catalog knows."""
    versions = _components().get(name)
    if not versions:
        return None
    if version is None:
        return versions[max(versions, key=_version_key)]
    return versions.get(version)



# ---- models ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownModel:
    name: str
    registry: str
    version: str
    finetune_skus: tuple[str, ...]
    inference_skus: tuple[str, ...]
    model_specific_defaults: dict[str, str]
    parameters: int | None = None  # the base model's size, for the training-time estimate
    parameters_source: str = ""


@cache
def _models() -> dict[str, KnownModel]:
    raw = json.loads(_read("models.json"))["models"]
    return {
        name.lower(): KnownModel(
            name=name, registry=m["registry"], version=str(m["version"]),
            finetune_skus=tuple(m["finetune_compute_allow_list"]),
            inference_skus=tuple(m["inference_compute_allow_list"]),
            model_specific_defaults=dict(m["model_specific_defaults"]),
            parameters=m.get("parameters"), parameters_source=m.get("parameters_source", ""),
        )
        for name, m in raw.items()
    }


def known_model(registry: str | None, name: str) -> KnownModel | None:
    model = _models().get(name.lower())
    return model if model and (registry in (None, model.registry)) else None


def similar_model(registry: str | None, name: str) -> str | None:
    """The catalog's model of `registry` whose name is closest to `name` (a likely typo), if any is close."""
    names = {m.name.lower(): m.name for m in _models().values() if registry in (None, m.registry)}
    close = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.85)
    return names[close[0]] if close else None


def model_names(registry: str) -> list[str]:
    """The chat models the catalog knows in `registry` (a registry holds many more)."""
    return [m.name for m in _models().values() if m.registry == registry]


def component_names() -> list[str]:
    """The registry components whose input schemas the catalog holds."""
    return list(_components())


def catalog_registries() -> set[str]:
    """Registries whose chat models the catalog lists (only those models: a registry holds many more)."""
    return {m.registry for m in _models().values()}


# ---- generation parameters (the smoke-test request) -----------------------------------------------------------------

@dataclass(frozen=True)
class GenerationOption:
    name: str
    type: str  # number, integer, boolean, string
    min: float | None = None
    max: float | None = None
    description: str = ""


@cache
def generation_options() -> dict[str, GenerationOption]:
    raw = json.loads(_read("generation.json"))["options"]
    return {name: GenerationOption(name, o["type"], o.get("min"), o.get("max"), o.get("description", ""))
            for name, o in raw.items()}


# ---- naming ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NamingRule:
    kind: str
    pattern: str
    min: int
    max: int
    text: str


@cache
def _naming() -> dict[str, NamingRule]:
    raw = json.loads(_read("naming.json"))["rules"]
    return {k: NamingRule(k, v["pattern"], v["min"], v["max"], v["text"]) for k, v in raw.items()}


def naming_rule(kind: str) -> NamingRule:
    return _naming()[kind]


def name_problem(kind: str, value: str) -> str | None:
    """Why `value` is not a valid name of this kind, or None if it is."""
    rule = naming_rule(kind)
    if not (rule.min <= len(value) <= rule.max) or not re.fullmatch(rule.pattern, value):
        return f"'{value}' is not a valid {kind} name: {rule.text}"
    if kind == "compute" and "-" in value and not re.search(r"[a-zA-Z]", value.rsplit("-", 1)[1]):
        return f"'{value}' is not a valid compute name: the part after the last '-' must contain a letter"
    return None
