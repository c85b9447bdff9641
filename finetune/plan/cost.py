"""Time and cost estimate of a plan: training hours and dollars as a low-high range, the endpoint per day and month.

Azure ML: training hours from the prepared token count x epochs over a throughput derived from the base model's size
(catalog), LoRA or full fine-tuning, precision and the SKU's GPUs (catalog), plus the pipeline's fixed overhead;
every assumption is written into the estimate. Local: from this machine's measured throughput (a calibration run).
Prices are the catalog's approximate list prices (eastus, Linux, on-demand). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune import catalog
from finetune.spec.models import Spec, TargetKind

HOURS_PER_DAY = 24
HOURS_PER_MONTH = 730  # the month Azure's pricing calculator bills (8,760 h / 12)
LOCAL_SLACK = 1.25  # the local estimate's margin either way: see the assumption it prints
PRICES = "approximate list prices (eastus, Linux, on-demand) from the offline catalog; your prices may differ"


@dataclass(frozen=True)
class Workload:
    """What training processes: tokens per epoch (train, and evaluation forward passes) and how many epochs."""

    rows: int
    train_tokens: int  # per epoch
    eval_tokens: int  # per epoch; 0 without evaluation
    epochs: float
    eval_role: str | None

    def describe(self) -> str:
        epochs = f"{self.epochs:g}" if self.epochs == int(self.epochs) else f"{self.epochs:.2f}"
        plural = "s" if self.epochs != 1 else ""
        text = f"{self.rows:,} rows, {_count(self.train_tokens)} tokens x {epochs} epoch{plural}"
        if self.eval_tokens:
            text += f", evaluating {_count(self.eval_tokens)} {self.eval_role} tokens each epoch"
        return text


def estimate_cost(spec: Spec, parameters: dict[str, Any], data_stats: dict[str, dict[str, int]], *,
                  training_runs: bool = True, throughput: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan's `cost` block. `parameters`: the effective training parameters (name -> value); `data_stats`: the
    data step's counts per role (empty when the data is not prepared); `throughput`: the local calibration."""
    cost: dict[str, Any] = {"currency": "USD", "training_runs": training_runs, "training_hours": None,
                            "training_usd": None, "assumptions": [], "notes": []}
    if spec.target.kind is TargetKind.LOCAL:
        _local_training(spec, parameters, data_stats, throughput, cost)
        cost.update({"training_per_hour": 0.0, "endpoint_per_hour": 0.0, "endpoint_per_day": 0.0,
                     "endpoint_per_month": 0.0, "deployments": []})
        cost["notes"].append("local target: runs on this machine, no cloud cost")
    else:
        _azure_training(spec, parameters, data_stats, cost)
        _endpoint(spec, cost)
        cost["notes"].append(PRICES)
    return cost


# ---- the workload -------------------------------------------------------------------------------------------------

def workload(parameters: dict[str, Any], data_stats: dict[str, dict[str, int]], *, world_size: float,
             tokens_per_row: float, token_scale: float = 1.0) -> Workload | None:
    """Tokens per epoch and epochs from the data step's counts; None when the data is not prepared.

    Tokens per row: the data step's approximate count (x `token_scale`) plus `tokens_per_row` for the chat template,
    or the padded length when the component pads every row to max_seq_length.
    """
    train = data_stats.get("train")
    if not train or not train.get("rows"):
        return None
    eval_role = next((r for r in ("validation", "test") if data_stats.get(r, {}).get("rows")), None)

    def tokens(stats: dict[str, int]) -> int:
        if str(parameters.get("pad_to_max_length")) == "true" and _int(parameters.get("max_seq_length"), -1) > 0:
            return stats["rows"] * _int(parameters["max_seq_length"], 0)
        return round(stats["approx_tokens"] * token_scale + stats.get("turns", 0) * tokens_per_row)

    evaluating = eval_role is not None and str(parameters.get("evaluation_strategy", "epoch")) != "disable"
    epochs = float(parameters.get("num_train_epochs") or 1)
    max_steps = _int(parameters.get("max_steps"), -1)
    if max_steps > 0:  # overrides epochs: the rows that many optimizer steps see
        per_step = (_int(parameters.get("per_device_train_batch_size"), 1)
                    * _int(parameters.get("gradient_accumulation_steps"), 1) * max(world_size, 1))
        epochs = max_steps * per_step / train["rows"]
    return Workload(train["rows"], tokens(train), tokens(data_stats[eval_role]) if evaluating and eval_role else 0,
                    epochs, eval_role if evaluating else None)


# ---- Azure ML -----------------------------------------------------------------------------------------------------

def _azure_training(spec: Spec, parameters: dict[str, Any], data_stats: dict[str, dict[str, int]],
                    cost: dict[str, Any]) -> None:
    if spec.compute is None:
        cost["training_per_hour"] = None
        return
    sku = catalog.find_sku(spec.compute.sku)
    nodes = spec.finetune.num_nodes
    price = sku.usd_per_hour * nodes if sku and sku.usd_per_hour is not None else None
    cost["training_per_hour"] = price
    cost["training"] = {"sku": spec.compute.sku, "nodes": nodes, "gpus": sku.describe if sku else None,
                        "usd_per_hour": price}
    if spec.compute.min_instances:
        idle = sku.usd_per_hour * spec.compute.min_instances if sku and sku.usd_per_hour is not None else None
        cost["idle_nodes"] = {"sku": spec.compute.sku, "count": spec.compute.min_instances, "usd_per_hour": idle,
                              "usd_per_day": _times(idle, HOURS_PER_DAY),
                              "usd_per_month": _times(idle, HOURS_PER_MONTH)}
    if price is None:
        cost["notes"].append(f"no price known for {spec.compute.sku}")
    elif spec.compute.tier == "low_priority":
        cost["notes"].append("low_priority nodes bill at a lower rate than the on-demand price shown, and can be "
                             "preempted, which makes a run longer")
    rates = _gpu_rates(spec, parameters, sku, cost)
    if rates is None:
        return
    assumptions = catalog.training_assumptions()
    work = workload(parameters, data_stats, world_size=rates["gpus"],
                    tokens_per_row=assumptions["template_tokens_per_message"])
    if work is None:
        cost["notes"].append("training time: known once the data is prepared (`finetune data prepare SPEC`, or a "
                             "plan that is not --offline)")
        return
    cost["training"].update(workload=work.describe(), tokens=round(work.train_tokens * work.epochs))
    overhead = assumptions["overhead_hours"]
    cost["assumptions"].append(f"tokens: the data step's count (content characters / 4) + "
                               f"{assumptions['template_tokens_per_message']} per message for the chat template")
    cost["assumptions"].append(f"fixed {overhead['low']:g}-{overhead['high']:g} h: {overhead['why']}")
    fast, slow = rates["high"], rates["low"]
    eval_speedup = rates["flops"] / assumptions["flops_per_token"]["eval"]
    low = _seconds(work, fast, eval_speedup) / 3600 + overhead["low"]
    high = _seconds(work, slow, eval_speedup) / 3600 + overhead["high"]
    cost["training_hours"] = {"low": round(low, 2), "high": round(high, 2)}
    if price is not None:
        cost["training_usd"] = {"low": round(low * price, 2), "high": round(high * price, 2)}


def _gpu_rates(spec: Spec, parameters: dict[str, Any], sku: catalog.Sku | None,
               cost: dict[str, Any]) -> dict[str, float] | None:
    """Tokens/s of the whole job (all GPUs of all nodes), low and high, with the reasoning in `assumptions`."""
    assert spec.compute is not None
    if sku is None or not sku.gpus:
        cost["notes"].append(f"training time: {spec.compute.sku} has no GPU the catalog knows")
        return None
    gpu = catalog.gpu_performance(sku.gpu_type, sku.gpu_mem_gb)
    known = catalog.known_model(spec.model.registry, spec.model.name) if spec.model.name else None
    if gpu is None or known is None or not known.parameters:
        missing = f"the speed of {sku.gpu_type} GPUs" if gpu is None else f"the size of {spec.model.reference}"
        cost["notes"].append(f"training time: unknown, the catalog lacks {missing}")
        return None
    assumptions = catalog.training_assumptions()
    lora = str(parameters.get("apply_lora", "false")) == "true"
    half = str(parameters.get("precision", "32")) == "16"
    flops = assumptions["flops_per_token"]["lora" if lora else "full"]
    peak = gpu.half_tflops if half else gpu.fp32_tflops
    util = assumptions["utilization"]
    per_gpu = {k: peak * 1e12 * util[k] / (flops * known.parameters) for k in ("low", "high")}
    gpus = sku.gpus * spec.finetune.num_nodes
    scaling = assumptions["multi_gpu_efficiency"] if gpus > 1 else {"low": 1.0, "high": 1.0}
    total = {k: per_gpu[k] * gpus * scaling[k] for k in ("low", "high")}
    size = f"{known.parameters / 1e9:.2f}B"
    cost["assumptions"] += [
        f"model: {known.name}, {size} parameters ({known.parameters_source})",
        f"{'LoRA' if lora else 'full fine-tuning'}: {flops} FLOPs per parameter per token "
        f"({assumptions['flops_per_token']['why']})",
        f"{sku.gpu_type}: {peak:g} TFLOP/s peak at {'16-bit' if half else '32-bit'} precision ({gpu.source})",
        f"utilization {util['low']:.0%}-{util['high']:.0%} ({util['why']})",
        f"throughput: peak x utilization / ({flops} x {size}) = {per_gpu['low']:,.0f}-{per_gpu['high']:,.0f} "
        f"tokens/s per GPU, {gpus:g} GPU{'s' if gpus != 1 else ''}"
        + (f" at {scaling['low']:.0%}-{scaling['high']:.0%} efficiency ({scaling['why']})" if gpus > 1 else ""),
    ]
    cost["training"]["tokens_per_second"] = {k: round(v) for k, v in total.items()}
    return {**total, "gpus": gpus, "flops": flops}


def _endpoint(spec: Spec, cost: dict[str, Any]) -> None:
    deployments = []
    hourly: float | None = 0.0
    for deployment in (spec.endpoint.deployments if spec.endpoint else []):
        sku = catalog.find_sku(deployment.sku or "")
        price = sku.usd_per_hour * deployment.instance_count if sku and sku.usd_per_hour is not None else None
        deployments.append({"name": deployment.name, "sku": deployment.sku, "instances": deployment.instance_count,
                            "usd_per_hour": price})
        if price is None:
            hourly = None
            cost["notes"].append(f"no price known for {deployment.sku}")
        elif hourly is not None:
            hourly += price
    cost.update({"deployments": deployments, "endpoint_per_hour": hourly,
                 "endpoint_per_day": _times(hourly, HOURS_PER_DAY), "endpoint_per_month": _times(hourly,
                                                                                             HOURS_PER_MONTH)})


# ---- local --------------------------------------------------------------------------------------------------------

def _local_training(spec: Spec, parameters: dict[str, Any], data_stats: dict[str, dict[str, int]],
                    throughput: dict[str, Any] | None, cost: dict[str, Any]) -> None:
    if throughput is None:
        cost["notes"].append("training time: measured by a short calibration run on this machine, which a plan "
                             "that is not --offline makes before training (once per machine and model, cached)")
        return
    if "error" in throughput:
        cost["notes"].append(f"training time: unknown, {throughput['error']}")
        return
    rate = throughput["tokens_per_second"]
    work = workload(parameters, data_stats, world_size=1, tokens_per_row=0,
                    token_scale=throughput["tokens_per_data_token"])
    cost["training"] = {"device": throughput["device"], "tokens_per_second": dict(rate)}
    cost["assumptions"] += [
        f"this machine ({throughput['device']}) trained {spec.model.reference} at {rate['low']:,.0f}-"
        f"{rate['high']:,.0f} tokens/s (slowest-fastest of {throughput['steps']} measured steps, calibration of "
        f"{throughput['measured_at']}, cached)",
        f"tokens: the data step's count x {throughput['tokens_per_data_token']:.2f}, the tokenizer's tokens per "
        "counted token on the calibration rows (chat template included)",
        f"fixed {throughput['setup_seconds']:.0f} s: imports, model loading and saving, as measured",
        f"the range allows {LOCAL_SLACK - 1:.0%} either way for a machine idler or busier than at calibration "
        "(the slow end also for the run's own bookkeeping: MLflow, checkpoints, which the calibration does not "
        "measure)",
    ]
    if work is None:
        cost["notes"].append("training time: known once the data is prepared (`finetune data prepare SPEC`)")
        return
    cost["training"].update(workload=work.describe(), tokens=round(work.train_tokens * work.epochs))
    eval_speedup = 2.0 if str(parameters.get("apply_lora")) == "true" else 3.0  # forward only (see gpus.json)
    setup = throughput["setup_seconds"]
    low = (_seconds(work, rate["high"], eval_speedup) + setup) / LOCAL_SLACK / 3600
    high = (_seconds(work, rate["low"], eval_speedup) + setup) * LOCAL_SLACK / 3600
    cost["training_hours"] = {"low": round(low, 4), "high": round(high, 4)}
    cost["training_usd"] = {"low": 0.0, "high": 0.0}


# ---- budget -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OverBudget:
    path: str  # the budget field, e.g. "budget.max_training_usd"
    message: str


def check_budget(spec: Spec, cost: dict[str, Any], *, endpoint_changes: bool) -> tuple[list[OverBudget], list[str]]:
    """What goes over the spec's budget (blocks the plan), and what could not be checked (said as notes).

    Training counts only when this apply trains, at the high end of its estimate; the endpoint only when this apply
    creates or changes a deployment.
    """
    budget = spec.budget
    if budget is None:
        return [], []
    over: list[OverBudget] = []
    unchecked: list[str] = []
    limit = budget.max_training_usd
    if limit is not None and cost.get("training_runs"):
        usd = cost.get("training_usd")
        if usd is None:
            unchecked.append("budget.max_training_usd not checked: the training cost is not known yet")
        elif usd["high"] > limit:
            over.append(OverBudget("budget.max_training_usd", f"training may cost up to {_money(usd['high'])} "
                                   f"(estimate {_money(usd['low'])}-{_money(usd['high'])}, "
                                   f"{_hours(cost['training_hours'])}), over the budget of {_money(limit)}"))
    limit = budget.max_endpoint_usd_per_day
    if limit is not None and endpoint_changes:
        per_day = cost.get("endpoint_per_day")
        if per_day is None:
            unchecked.append("budget.max_endpoint_usd_per_day not checked: a deployment's price is not known")
        elif per_day > limit:
            over.append(OverBudget("budget.max_endpoint_usd_per_day", f"the endpoint costs {_money(per_day)}/day "
                                   f"({_money(cost['endpoint_per_hour'])}/hour), over the budget of "
                                   f"{_money(limit)}/day"))
    return over, unchecked


# ---- helpers ------------------------------------------------------------------------------------------------------

def _seconds(work: Workload, tokens_per_second: float, eval_speedup: float) -> float:
    return work.epochs * (work.train_tokens + work.eval_tokens / eval_speedup) / tokens_per_second


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _int(value: Any, default: int) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _count(n: int) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return str(n)


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _hours(hours: dict[str, float]) -> str:
    return f"{hours['low']:.2f}-{hours['high']:.2f} h"
