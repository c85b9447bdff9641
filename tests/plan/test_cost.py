"""The time and cost estimate: training hours and dollars as ranges from tokens x epochs over the SKU's throughput,
the endpoint per day and month, and the budget gate (exit 3 with the figures)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from finetune import catalog
from finetune.cli import main
from finetune.plan.cost import check_budget, estimate_cost, workload
from finetune.render.cost_text import estimate_vs_actual
from finetune.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "phi3-ultrachat.yaml"
MINI = ROOT / "tests" / "fixtures" / "ultrachat-mini"
STATS = {"train": {"rows": 10000, "turns": 60000, "chars": 48_000_000, "approx_tokens": 12_000_000},
         "test": {"rows": 1000, "turns": 6000, "chars": 4_800_000, "approx_tokens": 1_200_000}}
A100 = {"apply_lora": "true", "precision": "16", "num_train_epochs": 3}


def spec_with(tmp_path: Path, text: str = "", replace: tuple[tuple[str, str], ...] = ()) -> Path:
    body = EXAMPLE.read_text()
    for old, new in replace:
        assert old in body
        body = body.replace(old, new)
    path = tmp_path / "spec.yaml"
    path.write_text(body + text)
    return path


def azure_cost(tmp_path, params=A100, stats=STATS, **kw):
    spec = load_spec(spec_with(tmp_path, **kw), check=False).spec
    return estimate_cost(spec, params, stats)


def test_training_range_follows_tokens_epochs_and_the_price(tmp_path):
    cost = azure_cost(tmp_path)
    hours, usd = cost["training_hours"], cost["training_usd"]
    assert 0 < hours["low"] < hours["high"]
    price = catalog.find_sku("Standard_NC24ads_A100_v4").usd_per_hour
    assert usd["low"] == pytest.approx(hours["low"] * price, abs=0.02)
    assert usd["high"] == pytest.approx(hours["high"] * price, abs=0.02)
    # by hand: 4 FLOPs x 3.82B parameters per token, 312 TFLOP/s at 40% (fast end), 3 epochs of
    # 12M + 4 x 60,000 template tokens plus evaluation of 1.2M + 24,000 tokens at twice the speed, + 0.25 h fixed
    fast = 312e12 * 0.40 / (4 * 3_821_079_552)
    expected = 3 * (12_240_000 + 1_224_000 / 2) / fast / 3600 + 0.25
    assert hours["low"] == pytest.approx(expected, abs=0.01)
    assert cost["training"]["tokens_per_second"]["high"] == round(fast)
    one_epoch = estimate_cost(load_spec(spec_with(tmp_path), check=False).spec, {**A100, "num_train_epochs": 1},
                              STATS)["training_hours"]
    assert (hours["low"] - 0.25) == pytest.approx(3 * (one_epoch["low"] - 0.25), abs=0.02)
    assert any("A100: 312 TFLOP/s" in a for a in cost["assumptions"])
    assert any("3.82B parameters" in a for a in cost["assumptions"])


def test_full_fine_tuning_32_bit_and_more_nodes_change_the_estimate(tmp_path):
    lora = azure_cost(tmp_path)["training_hours"]
    full = azure_cost(tmp_path, params={**A100, "apply_lora": "false"})["training_hours"]
    fp32 = azure_cost(tmp_path, params={**A100, "precision": "32"})["training_hours"]
    assert full["low"] > lora["low"] and fp32["low"] > 10 * (lora["low"] - 0.25)  # 312 vs 19.5 TFLOP/s
    two = azure_cost(tmp_path, replace=(("num_nodes: 1", "num_nodes: 2"),))
    assert two["training_hours"]["low"] < lora["low"]
    assert two["training_per_hour"] == pytest.approx(2 * 3.673)
    assert any("80%-100% efficiency" in a for a in two["assumptions"])


def test_max_steps_overrides_epochs():
    params = {"num_train_epochs": 3, "max_steps": 250, "per_device_train_batch_size": 2,
              "gradient_accumulation_steps": 2}
    work = workload(params, STATS, world_size=1, tokens_per_row=0)
    assert work.epochs == pytest.approx(250 * 4 / 10000)


def test_unknown_inputs_say_why_instead_of_guessing(tmp_path):
    no_data = azure_cost(tmp_path, stats={})
    assert no_data["training_hours"] is None and no_data["training_usd"] is None
    assert no_data["training_per_hour"] == pytest.approx(3.673)
    assert any("known once the data is prepared" in n for n in no_data["notes"])
    unknown_model = azure_cost(tmp_path, replace=(("name: Phi-3-mini-4k-instruct\n", "name: some-model\n"),))
    assert unknown_model["training_hours"] is None
    assert any("the catalog lacks the size of azureml/some-model" in n for n in unknown_model["notes"])


def test_endpoint_per_day_and_month(tmp_path):
    cost = azure_cost(tmp_path, replace=(("instance_count: 1", "instance_count: 2"),))
    assert cost["endpoint_per_hour"] == pytest.approx(2 * 3.673)
    assert cost["endpoint_per_day"] == pytest.approx(2 * 3.673 * 24)
    assert cost["endpoint_per_month"] == pytest.approx(2 * 3.673 * 730)


def test_budget_counts_only_what_this_apply_spends(tmp_path):
    spec = load_spec(spec_with(tmp_path, replace=(("max_training_usd: 50", "max_training_usd: 5"),
                                                  ("max_endpoint_usd_per_day: 100", "max_endpoint_usd_per_day: 50"))),
                     check=False).spec
    cost = estimate_cost(spec, A100, STATS)
    over, unchecked = check_budget(spec, cost, endpoint_changes=True)
    assert [o.path for o in over] == ["budget.max_training_usd", "budget.max_endpoint_usd_per_day"]
    assert f"up to ${cost['training_usd']['high']:,.2f}" in over[0].message and "$5.00" in over[0].message
    assert "$88.15/day" in over[1].message and not unchecked
    adopted = estimate_cost(spec, A100, STATS, training_runs=False)  # a completed job is adopted: nothing spent
    assert check_budget(spec, adopted, endpoint_changes=False) == ([], [])
    unknown = estimate_cost(spec, A100, {})
    over, unchecked = check_budget(spec, unknown, endpoint_changes=False)
    assert over == [] and unchecked == ["budget.max_training_usd not checked: the training cost is not known yet"]


def test_estimate_vs_actual_after_a_run():
    cost = {"training_hours": {"low": 30 / 3600, "high": 60 / 3600},
            "training": {"tokens_per_second": {"low": 3000, "high": 5000}, "tokens": 100_000}}
    run_ = {"train_seconds": 30.0, "train_tokens": 100_272, "tokens_per_second": 3342.4, "job_seconds": 45.0}
    assert estimate_vs_actual(cost, run_) == [
        "Training took 45 s; estimated 30-60 s: within the estimate",
        "  100,272 tokens at 3,342 tokens/s (estimated 3,000-5,000 tokens/s, 100,000 tokens)"]
    assert estimate_vs_actual(cost, {**run_, "job_seconds": 75.0})[0].endswith("75 s; estimated 30-60 s: over the "
                                                                                "estimate")
    assert estimate_vs_actual(cost, {**run_, "job_seconds": 20.0})[0].endswith("under the estimate")
    assert estimate_vs_actual({}, run_) == ["Training took 45 s", "  100,272 tokens at 3,342 tokens/s"]
    assert estimate_vs_actual(cost, {"name": "adopted-job", "metrics": {}}) == []  # nothing trained: no line


# ---- the example through the CLI ------------------------------------------------------------------------------

def run(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The phi3 example with its hub dataset in a private HF cache (the ultrachat-mini rows as parquet splits)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(var, raising=False)
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    repo = hub / "datasets--HuggingFaceH4--ultrachat_200k"
    commit = "c" * 40
    for split in ("train_sft", "test_sft", "test_gen"):
        rows = [json.loads(line) for line in (MINI / f"{split}.jsonl").read_text().splitlines()]
        target = repo / "snapshots" / commit / "data" / f"{split}-00000-of-00001.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), target)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(EXAMPLE, work / "phi3-ultrachat.yaml")
    monkeypatch.chdir(work)
    return work / "phi3-ultrachat.yaml"


def test_plan_of_the_example_shows_time_and_cost_ranges(capsys, example):
    assert run(capsys, "data", "prepare", example)[0] == 0
    code, out, _ = run(capsys, "plan", example, "--offline", "--json")
    assert code == 0
    cost = json.loads(out)["cost"]
    hours, usd = cost["training_hours"], cost["training_usd"]
    assert 0 < hours["low"] < hours["high"] and 0 < usd["low"] < usd["high"]
    assert cost["endpoint_per_day"] == pytest.approx(3.673 * 24)
    code, out, _ = run(capsys, "plan", example, "--offline")
    assert code == 0
    low, high = round(hours["low"] * 60), round(hours["high"] * 60)  # 5% of 15 rows: the fixed overhead, in minutes
    assert f"time {low}-{high} min, cost ${usd['low']:,.2f}-${usd['high']:,.2f}" in out
    assert f"({cost['training']['workload']})" in out and "x 3 epochs" in out
    assert out.count("$88.15/day") == 1 and out.count("Standard_NC24ads_A100_v4 x 1 node") == 1
    assert "assumptions:" in out and "tokens/s per GPU" in out


def test_over_budget_blocks_with_exit_3_and_the_figures(capsys, example):
    example.write_text(example.read_text().replace("max_training_usd: 50", "max_training_usd: 0.5"))
    assert run(capsys, "data", "prepare", example)[0] == 0
    code, out, _ = run(capsys, "plan", example, "--offline")
    assert code == 3
    assert "BLOCKED" in out and "over the budget of $0.50" in out
    assert "! blocked:" in out.split("+ job.finetune")[1].split("\n\n")[0]
    code, out, _ = run(capsys, "plan", example, "--offline", "--json")
    plan = json.loads(out)
    assert code == 3 and plan["blocked"]
    job = next(c for c in plan["changes"] if c["address"] == "job.finetune")
    assert job["blocked_by"] and "budget.max_training_usd" in job["blocked_by"][0]
    assert plan["cost"]["budget"]["over"][0].startswith("budget.max_training_usd: training may cost up to $")
    deployment = next(c for c in plan["changes"] if c["kind"] == "deployment")
    assert not deployment["blocked_by"]  # $88.15/day is within $100/day
    finding = next(d for d in plan["diagnostics"] if d["path"] == "budget.max_training_usd")
    assert finding["severity"] == "error" and finding["location"]["line"] > 1


def test_budget_that_cannot_be_checked_yet_does_not_block(capsys, example):
    example.write_text(example.read_text().replace("max_training_usd: 50", "max_training_usd: 0.5"))
    code, out, _ = run(capsys, "plan", example, "--offline")  # data not prepared: the cost is not known
    assert code == 0
    assert "budget.max_training_usd not checked: the training cost is not known yet" in out
