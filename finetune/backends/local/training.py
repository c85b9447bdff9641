"""The training itself (runs inside the job process): base model, chat data, LoRA, Trainer, merge and save."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from finetune.backends.local import cputhreads
from finetune.backends.local.chatdata import ChatCollator, encode_file, read_conversations
from finetune.backends.local.config import LocalTrainConfig
from finetune.backends.local.jobdir import StatusWriter, paths
from finetune.backends.local.proc import read_json, spawn_detached, tail, write_json_atomic
from finetune.backends.local.tiny import CHATML_TEMPLATE, build_model, build_tokenizer

_T0 = time.monotonic()


def log(message: str) -> None:
    """Timeline lines in train.log: where a job's seconds go (imports, data, training, saving)."""
    print(f"[{time.monotonic() - _T0:7.2f}s] {message}", flush=True)


def phase(status: StatusWriter, name: str) -> None:
    """What the job does before (or after) its training steps, for the progress line; "" while it trains."""
    if name:
        log(name)
    status.update(force=True, phase=name)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def half_dtype_name() -> str:
    """The half precision this GPU trains in: bf16 where supported (Ampere and later), else fp16."""
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def precision_flags(requested: str, device: str) -> tuple[dict[str, bool], str]:
    """Trainer flags and the precision actually used. `auto` (the default) and `16` mean half precision on CUDA;
    CPU always trains in 32 bits, where half precision is slower."""
    if requested == "32" or device != "cuda":
        return {}, "32"
    half = half_dtype_name()
    return {half: True}, half


def load_base(config: LocalTrainConfig, device: str) -> tuple[Any, Any]:
    """Tokenizer and base model. A tiny base is built once and saved, so a resumed run trains the same weights.
    A hub model is read from its cached snapshot (the commit resolved at plan time) without touching the network;
    only a model that was not cached at plan time is downloaded here."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = config.model
    base_dir = paths(config.output_dir)["base"]
    if src.tiny is not None and not (base_dir / "config.json").exists():
        tokenizer = build_tokenizer(config.train_file, src.tiny.vocab_size)
        model = build_model(tokenizer, src.tiny, seed=config.parameters["seed"])
        tmp = base_dir.with_name("base.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        tmp.rename(base_dir)
        return tokenizer, model
    location = str(base_folder(config)) if src.tiny is None else str(base_dir)
    kwargs: dict[str, Any] = {"dtype": load_dtype(config, device)}
    if src.quantization == "4bit":
        kwargs.update(quantization_config=four_bit_config(), device_map={"": 0})
    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    if src.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        print(f"{location} has no chat template; formatting chats as ChatML", flush=True)
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer, model


def base_folder(config: LocalTrainConfig) -> str:
    """Where the base model's files are: the given folder, the cached snapshot of the resolved commit, or (a hub
    model that was not cached at plan time) the hub id, which transformers downloads."""
    from finetune.backends.local.basemodel import cached_snapshot

    src = config.model
    if src.path:
        return src.path
    assert src.hf is not None
    snapshot, _ = cached_snapshot(src.hf, src.revision)
    return str(snapshot) if snapshot is not None else src.hf


def load_dtype(config: LocalTrainConfig, device: str) -> Any:
    """fp32 on CPU and for full fine-tuning (mixed precision keeps fp32 master weights); a frozen LoRA base on CUDA
    is held in the half precision it trains in (half the memory)."""
    import torch

    _, precision = precision_flags(config.parameters["precision"], device)
    if precision == "32" or config.parameters["apply_lora"] != "true":
        return torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float16


def four_bit_config() -> Any:
    """QLoRA's recipe: NF4 weights, double quantization, compute in the GPU's half precision."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if half_dtype_name() == "bf16" else torch.float16)


class MlflowSidecar:
    """Trainer side of MLflow tracking: metrics go to metrics.jsonl; a sidecar process (mlflowsync) ships them."""

    def __init__(self, output_dir: Path):
        from finetune.backends.local.metricslog import MetricsLog

        self.dir = output_dir
        path = output_dir / "metrics.jsonl"
        offset = path.stat().st_size if path.exists() else 0
        self.log = MetricsLog(path)
        self.proc = spawn_detached(["-m", "finetune.backends.local.mlflowsync", str(output_dir), "--parent",
                                    str(os.getpid()), "--offset", str(offset)], output_dir / "mlflow.log")
        self.run: dict[str, Any] | None = None

    def check(self) -> dict[str, Any] | None:
        """The run's ids once the sidecar has created it; raises if the sidecar failed (MLflow unusable)."""
        code = self.proc.poll()
        if code not in (None, 0):
            raise RuntimeError(f"MLflow tracking failed (exit {code}):\n{tail(self.dir / 'mlflow.log', 12)}")
        if self.run is None:
            self.run = read_json(self.dir / "mlflow.json")
        return self.run

    def finish(self, outcome: str, timeout: float = 120.0) -> dict[str, Any] | None:
        """End the run and wait for everything to be shipped (so Completed means the metrics are in MLflow)."""
        self.log.write({"end": outcome})
        self.log.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            raise RuntimeError(f"MLflow tracking did not finish within {timeout:.0f}s") from exc
        self.run = None  # re-read: the file may be an earlier attempt's until the sidecar rewrites it
        return self.check()


def _make_callback(status: StatusWriter, tracker: MlflowSidecar | None, config: LocalTrainConfig) -> Any:
    from transformers import TrainerCallback

    class JobCallback(TrainerCallback):
        """Status file, MLflow metrics and checkpoint timing; all cheap per step (writes are throttled)."""

        def __init__(self) -> None:
            self.last_save = time.monotonic()
            self.last_check = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            status.update(force=True, max_steps=state.max_steps, step=state.global_step, phase="")

        def on_log(self, args, state, control, logs=None, **kwargs):
            numbers = {k: float(v) for k, v in (logs or {}).items()
                       if isinstance(v, int | float) and math.isfinite(v)}
            if tracker is not None and numbers:
                tracker.log.write({"step": state.global_step, "metrics": numbers})
            status.update(metrics={**status.data.get("metrics", {}), **numbers}, step=state.global_step,
                          epoch=round(state.epoch or 0.0, 4))

        def on_step_end(self, args, state, control, **kwargs):
            every = config.checkpoint_every_steps
            interval = config.checkpoint_interval_s
            if (every and state.global_step % every == 0) or (
                    interval is not None and time.monotonic() - self.last_save >= interval):
                control.should_save = True
            if tracker is not None and time.monotonic() - self.last_check >= 1.0:
                self.last_check = time.monotonic()
                run = tracker.check()
                if run and not status.data.get("mlflow"):
                    status.data["mlflow"] = run
            status.update(step=state.global_step, epoch=round(state.epoch or 0.0, 4))
            return control

        def on_save(self, args, state, control, **kwargs):
            self.last_save = time.monotonic()
            status.update(force=True, last_checkpoint_step=state.global_step)

    return JobCallback()


def _counting_trainer_class() -> Any:
    from transformers import Trainer

    class CountingTrainer(Trainer):
        """Counts real (non-padding) training tokens; kept as a device tensor so a GPU never syncs per step."""

        tokens = 0

        def training_step(self, model, inputs, *args, **kwargs):
            self.tokens = self.tokens + inputs["attention_mask"].sum()
            return super().training_step(model, inputs, *args, **kwargs)

    return CountingTrainer


def trainer_settings(config: LocalTrainConfig, device: str, has_eval: bool) -> dict[str, Any]:
    """The TrainingArguments this trainer sets (precision flags aside); everything else keeps the library's default.
    Torch-free, so a plan can list them."""
    prm = config.parameters
    return dict(
        output_dir=str(paths(config.output_dir)["checkpoints"]),
        num_train_epochs=prm["num_train_epochs"],
        max_steps=prm["max_steps"],
        per_device_train_batch_size=prm["per_device_train_batch_size"],
        per_device_eval_batch_size=prm["per_device_eval_batch_size"],
        gradient_accumulation_steps=prm["gradient_accumulation_steps"],
        learning_rate=prm["learning_rate"],
        lr_scheduler_type=prm["lr_scheduler_type"],
        warmup_steps=prm["warmup_steps"],
        weight_decay=prm["weight_decay"],
        logging_steps=prm["logging_steps"],
        logging_strategy="steps",
        seed=prm["seed"],
        data_seed=prm["seed"],
        eval_strategy="epoch" if has_eval else "no",
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        save_strategy="no",  # the callback decides when to checkpoint (steps and/or seconds)
        save_total_limit=config.checkpoints_to_keep,
        report_to="none",  # metrics go to MLflow through the callback, batched
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_pin_memory=device == "cuda",
        use_cpu=device == "cpu",
    )


def training_arguments(config: LocalTrainConfig, device: str, has_eval: bool) -> tuple[Any, str]:
    from transformers import TrainingArguments

    flags, precision = precision_flags(config.parameters["precision"], device)
    return TrainingArguments(**trainer_settings(config, device, has_eval), **flags), precision


def apply_lora(model: Any, prm: dict[str, Any]) -> Any:
    from peft import LoraConfig, get_peft_model

    targets = prm["lora_target_modules"]
    if isinstance(targets, str) and targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    # GPT-2 style models keep their weights transposed (Conv1D); peft must know, or it warns and fixes it itself.
    transposed = getattr(model.config, "model_type", None) == "gpt2"
    lora = LoraConfig(r=prm["lora_r"], lora_alpha=prm["lora_alpha"], lora_dropout=prm["lora_dropout"],
                      target_modules=targets, task_type="CAUSAL_LM", fan_in_fan_out=transposed)
    return get_peft_model(model, lora)


def train(config: LocalTrainConfig, status: StatusWriter) -> dict[str, Any]:
    """Train (resuming from the latest checkpoint if any), merge, save; returns the final status fields."""
    p = paths(config.output_dir)
    # Malformed data fails in milliseconds, not after torch's multi-second import.
    for data_file in filter(None, (config.train_file, config.validation_file)):
        read_conversations(data_file)
    # Started first, so MLflow's import and DB setup overlap torch's import on another core.
    tracker = MlflowSidecar(Path(config.output_dir)) if config.mlflow is not None else None
    phase(status, "importing torch and transformers")
    try:
        return _train(config, status, tracker, p)
    except BaseException as exc:
        if tracker is not None:
            try:
                tracker.finish("FAILED" if isinstance(exc, Exception) else "KILLED", timeout=30)
            except Exception:  # the original error matters more than a failed bookkeeping write
                pass
        raise


def _train(config: LocalTrainConfig, status: StatusWriter, tracker: MlflowSidecar | None,
           p: dict[str, Path]) -> dict[str, Any]:
    from transformers import set_seed

    log("training libraries imported")
    prm = config.parameters
    device = pick_device()
    set_seed(prm["seed"])
    phase(status, f"loading model {config.model.hf or config.model.path or '(tiny, built from the config)'}")
    tokenizer, model = load_base(config, device)
    max_len = prm["max_seq_length"]
    if getattr(model.config, "max_position_embeddings", None):
        max_len = min(max_len, model.config.max_position_embeddings)
    phase(status, "tokenizing data")
    train_rows = encode_file(tokenizer, config.train_file, max_len)
    eval_rows = encode_file(tokenizer, config.validation_file, max_len) if config.validation_file else []
    if not train_rows:
        raise ValueError(f"{config.train_file}: no trainable rows (no assistant turns within max_seq_length)")
    threads = cputhreads.configure(model) if device == "cpu" else None
    if prm["apply_lora"] == "true":
        model = apply_lora(model, prm)
    log(f"model and data ready: {config.model.describe()[:80]}, {len(train_rows)} train rows, device {device}"
        + (f", {threads} CPU threads" if threads else ""))

    phase(status, "preparing the trainer")
    args, precision = training_arguments(config, device, bool(eval_rows))
    status.update(force=True, device=device, precision=precision, cpu_threads=threads, train_rows=len(train_rows),
                  eval_rows=len(eval_rows))

    if tracker is not None:
        tracker.log.write({"params": {"device": device, "effective_precision": precision, "cpu_threads": threads,
                                      "max_seq_length_effective": max_len, "train_rows": len(train_rows),
                                      "eval_rows": len(eval_rows)}})
    trainer = _counting_trainer_class()(
        model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows or None,
        data_collator=ChatCollator(tokenizer.pad_token_id), callbacks=[_make_callback(status, tracker, config)])
    log("trainer ready")
    last, resumed_from = last_complete_checkpoint(p["checkpoints"])
    if last:
        log(f"resuming from {last} (step {resumed_from})")
        status.update(force=True, resumed_from_step=resumed_from, step=resumed_from)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - started
    tokens = int(trainer.tokens)
    log(f"trained {trainer.state.global_step} steps, {tokens} tokens in {seconds:.1f}s")
    phase(status, "saving the model")
    trained = dequantized(trainer.model, config) if config.model.quantization else trainer.model
    model_dir = save_merged(trained, tokenizer, p["model"], {
        "training_hash": config.training_hash(), "model_source": config.model.describe(),
        "global_step": trainer.state.global_step, "metrics": result.metrics})
    log(f"saved {model_dir}")
    if tracker is not None:
        tracker.log.write({"step": trainer.state.global_step,
                           "metrics": {"train_tokens_per_second": tokens / seconds if seconds else 0.0}})
        phase(status, "finishing the MLflow run")
        status.update(mlflow=tracker.finish("FINISHED"))
        log(f"MLflow run {status.data['mlflow']['run_id']} finished")
    log("done")
    return {"step": trainer.state.global_step, "max_steps": trainer.state.max_steps,
            "epoch": round(trainer.state.epoch or 0.0, 4), "model_dir": str(model_dir),
            "metrics": {**status.data.get("metrics", {}), **result.metrics},
            "train_tokens": tokens, "train_seconds": round(seconds, 3),
            "tokens_per_second": round(tokens / seconds, 1) if seconds else None}


def last_complete_checkpoint(folder: Path) -> tuple[str | None, int | None]:
    """The newest checkpoint that was fully written, and its step. Trainer writes trainer_state.json last, so a
    checkpoint without a readable one was cut short by a kill: it is removed, and the one before it is used."""
    if not folder.is_dir():
        return None, None
    found = sorted(((int(d.name.rsplit("-", 1)[1]), d) for d in folder.glob("checkpoint-*")
                    if d.is_dir() and d.name.rsplit("-", 1)[1].isdigit()), reverse=True)
    for _step, directory in found:
        try:
            return str(directory), int(json.loads((directory / "trainer_state.json").read_text())["global_step"])
        except (OSError, ValueError, KeyError):
            log(f"removing incomplete {directory.name}")
            shutil.rmtree(directory, ignore_errors=True)
    return None, None


def dequantized(model: Any, config: LocalTrainConfig) -> Any:
    """QLoRA's adapters on the base reloaded in half precision: merging into 4-bit weights would round the update
    away, and the served model then needs neither bitsandbytes nor peft."""
    import tempfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    half = torch.bfloat16 if half_dtype_name() == "bf16" else torch.float16
    with tempfile.TemporaryDirectory(dir=config.output_dir) as adapter:
        model.save_pretrained(adapter)
        base = AutoModelForCausalLM.from_pretrained(base_folder(config), dtype=half)
        return PeftModel.from_pretrained(base, adapter)


def save_merged(model: Any, tokenizer: Any, model_dir: Path, meta: dict[str, Any]) -> Path:
    """LoRA merged into the base (serving needs no peft), saved beside the tokenizer; swapped in atomically."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json_atomic(tmp / "finetune-model.json", meta)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    tmp.rename(model_dir)
    return model_dir
