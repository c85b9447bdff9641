"""This machine's training throughput for a model: a short calibration run, cached per machine and model.

The plan's local time estimate divides the data's tokens by what this machine measured: the real trainer (same
model loading, tokenizer, LoRA, TrainingArguments and collator as `training`) runs a few optimizer steps on the
first rows of the prepared training file, in a child process so the CLI never imports torch. The same child reads
the training libraries' defaults (TrainingArguments, LoraConfig) that the plan lists, also cached.

Cache: `<state>/cache/throughput/<key>.json`, the key a hash of the machine (host, CPU, GPUs, thread setting) and
what decides the speed (model source, LoRA, precision, batch size, sequence length); `<state>/cache/libraries/`
by library versions and device.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from finetune.backends.local.config import LocalTrainConfig
from finetune.backends.local.proc import read_json, write_json_atomic

MODULE = "finetune.backends.local.calibrate"
ROWS = 64  # calibration rows: enough for several batches, few enough to encode in well under a second
MAX_STEPS = 12  # timed optimizer steps, after one warm-up step
MAX_TIMED_SECONDS = 15.0  # a big model on a CPU stops early (at least two timed steps)
TIMEOUT_S = 300.0
SPEED_PARAMETERS = ("apply_lora", "lora_r", "lora_target_modules", "precision", "per_device_train_batch_size",
                    "gradient_accumulation_steps", "max_seq_length")
TRAINING_ARGUMENT_DEFAULTS = ("optim", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
                              "gradient_checkpointing", "label_smoothing_factor", "dataloader_num_workers",
                              "dataloader_drop_last", "torch_compile")
LORA_DEFAULTS = ("bias", "use_rslora", "use_dora", "init_lora_weights", "fan_in_fan_out")


class CalibrationError(RuntimeError):
    """The calibration run failed or took too long; the plan says the time is unknown, and why."""


def machine() -> dict[str, Any]:
    """What makes this machine this machine, for the cache key; stdlib reads only (no torch)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    gpus = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            gpus += [line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                     if line.startswith("Model:")]
        except OSError:
            continue
    return {"host": platform.node(), "arch": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
            "gpus": gpus, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cpu_threads": os.environ.get("FINETUNE_CPU_THREADS")}


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def calibration_key(config: LocalTrainConfig) -> str:
    speed = {k: config.parameters[k] for k in SPEED_PARAMETERS}
    return _digest({"machine": machine(), "model": config.model.describe(), "speed": speed})


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def libraries_key() -> str:
    return _digest({"versions": library_versions(), "gpus": machine()["gpus"],
                    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})


def cached(cache_dir: Path, config: LocalTrainConfig) -> dict[str, Any] | None:
    return read_json(cache_dir / "throughput" / f"{calibration_key(config)}.json")


def cached_libraries(cache_dir: Path) -> dict[str, Any] | None:
    return read_json(cache_dir / "libraries" / f"{libraries_key()}.json")


def measure(config: LocalTrainConfig, cache_dir: Path, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Run the calibration in a child process and cache what it measured (and the libraries' defaults)."""
    key = calibration_key(config)
    with tempfile.TemporaryDirectory(prefix="finetune-calibrate-") as tmp:
        job = Path(tmp) / "config.json"
        replace(config, output_dir=str(Path(tmp) / "run"), mlflow=None).save(job)
        out = Path(tmp) / "result.json"
        try:
            done = subprocess.run([sys.executable, "-m", MODULE, str(job), str(out)], capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        except subprocess.TimeoutExpired:
            raise CalibrationError(f"the calibration run did not finish within {timeout:.0f} s") from None
        result = read_json(out)
        if done.returncode != 0 or result is None:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise CalibrationError(f"the calibration run failed: {last[:300]}")
    libraries = result.pop("libraries")
    result.update(machine=machine(), model=config.model.describe(), key=key,
                  measured_at=datetime.now(UTC).isoformat(timespec="seconds"))
    write_json_atomic(cache_dir / "throughput" / f"{key}.json", result)
    write_json_atomic(cache_dir / "libraries" / f"{libraries_key()}.json", libraries)
    return result


# ---- inside the child process -----------------------------------------------------------------------------------

def run(config: LocalTrainConfig, started: float) -> dict[str, Any]:
    """A few optimizer steps of the real trainer; tokens/s per step, setup time, tokens per data-step token."""
    from transformers import TrainerCallback, set_seed

    from finetune.backends.local import cputhreads, training
    from finetune.backends.local.chatdata import IGNORE_INDEX, ChatCollator, encode_conversation, read_conversations
    from finetune.data.stats import SplitStats

    prm = config.parameters
    device = training.pick_device()
    set_seed(prm["seed"])
    tokenizer, model = training.load_base(config, device)
    max_len = prm["max_seq_length"]
    if getattr(model.config, "max_position_embeddings", None):
        max_len = min(max_len, model.config.max_position_embeddings)
    rows, counted = [], SplitStats()
    for messages in read_conversations(config.train_file)[:ROWS]:
        row = encode_conversation(tokenizer, messages, max_len)
        if any(t != IGNORE_INDEX for t in row["labels"]):
            rows.append(row)
            counted.add({"messages": messages})
    if not rows:
        raise ValueError(f"{config.train_file}: no trainable rows to calibrate on")
    parameters = sum(p.numel() for p in model.parameters())
    if device == "cpu":
        cputhreads.configure(model)
    if prm["apply_lora"] == "true":
        model = training.apply_lora(model, prm)
    calibrating = replace(config, parameters={**prm, "max_steps": 1 + MAX_STEPS, "num_train_epochs": 1000})
    args, precision = training.training_arguments(calibrating, device, has_eval=False)
    steps: list[float] = []

    class Timer(TrainerCallback):
        """Tokens/s of each optimizer step after the first (which pays for warm-up)."""

        def __init__(self) -> None:
            self.mark: tuple[float, int] | None = None

        def on_step_end(self, args, state, control, **kwargs):
            now, tokens = time.perf_counter(), int(trainer.tokens)
            if self.mark is not None and now > self.mark[0]:
                steps.append((tokens - self.mark[1]) / (now - self.mark[0]))
            self.mark = (now, tokens)
            timed = len(steps)
            if timed >= MAX_STEPS or (timed >= 2 and now - first[0] > MAX_TIMED_SECONDS):
                control.should_training_stop = True
            return control

    timer = Timer()
    trainer = training._counting_trainer_class()(model=model, args=args, train_dataset=rows,
                                                 data_collator=ChatCollator(tokenizer.pad_token_id),
                                                 callbacks=[timer])
    setup = time.perf_counter() - started
    first = [time.perf_counter()]
    trainer.train()
    if not steps:
        raise ValueError("the calibration run took no timed step")
    saving = time.perf_counter()  # the run ends by merging LoRA and saving the model: part of its time
    training.save_merged(trainer.model, tokenizer, Path(config.output_dir) / "model", {})
    save = time.perf_counter() - saving
    real = sum(len(r["input_ids"]) for r in rows)
    return {"device": device, "precision": precision, "parameters": parameters, "steps": len(steps),
            "tokens_per_second": {"low": round(min(steps), 1), "median": round(statistics.median(steps), 1),
                                  "high": round(max(steps), 1)},
            "tokens_per_data_token": round(real / counted.approx_tokens, 4),
            "setup_seconds": round(setup + save, 2), "libraries": library_defaults(device)}


def library_defaults(device: str) -> dict[str, Any]:
    """The values TrainingArguments and LoraConfig take for what the trainer leaves unset, as constructed here."""
    from peft import LoraConfig
    from transformers import TrainingArguments

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, use_cpu=device == "cpu", report_to="none")
    lora = LoraConfig(task_type="CAUSAL_LM")
    return {"versions": library_versions(), "device": device,
            "training_arguments": {k: _plain(getattr(args, k)) for k in TRAINING_ARGUMENT_DEFAULTS if hasattr(args, k)},
            "lora": {k: _plain(getattr(lora, k)) for k in LORA_DEFAULTS if hasattr(lora, k)}}


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) or value is None else str(getattr(value, "value",
                                                                                                    value))


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    config_path, out = (argv if argv is not None else sys.argv[1:])[:2]
    config = LocalTrainConfig.load(config_path)
    write_json_atomic(out, run(config, started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
