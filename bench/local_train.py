"""Training throughput of the local target's job vs a plain transformers Trainer, side by side in one run.

    python bench/local_train.py [--arch qwen2] [--hidden 256] [--layers 4] [--rounds 3] [--epochs 1] [--full]
                                [--no-mlflow] [--no-matched]

Both sides train the same small base of a real architecture (Llama, Mistral, Qwen2, Phi-3 or GPT-2 config from
transformers, random weights, a BPE tokenizer trained on the quickstart chats; built once) on the same rows with the
same hyperparameters, each in its own process. LoRA goes on the modules finetune's plan derives for that
architecture, on both sides. On a CUDA machine both train on the GPU in the same half precision.
"ours" is the real entry point (`trainjob.launch`: detached process,
status file, per-step MLflow metrics, checkpoint policy); "plain" is a bare Trainer (report_to none, no saves).
Throughput is real (non-padding) training tokens per second of the training loop; rounds alternate the two sides
so machine noise hits both. Prints the median of each and the ratio ours/plain (goal >= 0.9 on CPU).
Ours picks its CPU thread count (one thread for tiny models, see cputhreads.py) and batches rows of similar
length (less padding); a third arm, "plain-matched", runs the plain Trainer with those same two settings, so the
machinery's own cost is visible apart from those choices.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "examples" / "data" / "quickstart" / "train.jsonl"


def build_base(workdir: Path, args: argparse.Namespace) -> Path:
    import torch
    import transformers

    from finetune.backends.local.tiny import build_tokenizer

    tokenizer = build_tokenizer(DATA, 2000)
    ids = {"vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id, "bos_token_id": None}
    if args.arch == "gpt2":
        config = transformers.GPT2Config(n_embd=args.hidden, n_layer=args.layers, n_head=args.hidden // 32,
                                         n_positions=512, **ids)
    else:
        name = {"llama": "LlamaConfig", "mistral": "MistralConfig", "qwen2": "Qwen2Config", "phi3": "Phi3Config"}
        config = getattr(transformers, name[args.arch])(
            hidden_size=args.hidden, intermediate_size=4 * args.hidden, num_hidden_layers=args.layers,
            num_attention_heads=args.hidden // 32, num_key_value_heads=args.hidden // 64 or 1,
            max_position_embeddings=512, tie_word_embeddings=True, **ids)
    config.architectures = [transformers.AutoModelForCausalLM._model_mapping[type(config)].__name__]
    torch.manual_seed(1)
    model = transformers.AutoModelForCausalLM.from_config(config)
    base = workdir / "base"
    tokenizer.save_pretrained(base)
    model.save_pretrained(base)
    return base


def parameters(args: argparse.Namespace) -> dict:
    return {"num_train_epochs": args.epochs, "per_device_train_batch_size": 8, "learning_rate": 3e-3,
            "apply_lora": "false" if args.full else "true", "lora_r": 16, "lora_alpha": 32, "max_seq_length": 512,
            "seed": 1, "logging_steps": 1, "lora_target_modules": args.targets}


def run_ours(base: Path, workdir: Path, args: argparse.Namespace, i: int) -> dict:
    from finetune.backends.local import trainjob
    from finetune.backends.local.config import LocalTrainConfig
    from finetune.backends.local.tracking import sqlite_uri

    out = workdir / f"ours-{i}"
    mlflow = None if args.no_mlflow else {"tracking_uri": sqlite_uri(workdir / "mlflow.db"), "experiment_name": "bench"}
    config = LocalTrainConfig(model={"path": str(base)}, train_file=str(DATA), output_dir=str(out),
                              parameters=parameters(args), mlflow=mlflow)
    started = time.perf_counter()
    trainjob.launch(config)
    status = trainjob.wait(out, poll=0.2)
    wall = time.perf_counter() - started
    if status.state is not trainjob.JobState.COMPLETED:
        raise SystemExit(f"our job ended {status.state}: {status.error}\n{(out / 'train.log').read_text()[-2000:]}")
    raw = status.raw
    return {"tokens": raw["train_tokens"], "seconds": raw["train_seconds"], "wall": wall,
            "loss": raw["metrics"].get("train_loss"), "threads": raw.get("cpu_threads")}


PLAIN = r'''
import json, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                          TrainingArguments)
base, data, params, out, threads = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5])
sampling = "group_by_length" if threads else "random"  # the matched arm also matches our sampler
if threads:
    torch.set_num_threads(threads)
cuda = torch.cuda.is_available()
half = {("bf16" if torch.cuda.is_bf16_supported() else "fp16"): True} if cuda else {}
tok = AutoTokenizer.from_pretrained(base)
lora = params["apply_lora"] == "true"
# as finetune does: a frozen LoRA base in the half precision it trains in; full fine-tuning keeps fp32 weights
dtype = (torch.bfloat16 if "bf16" in half else torch.float16) if cuda and lora else torch.float32
model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
rows = []
for line in open(data, encoding="utf-8"):
    enc = tok.apply_chat_template(json.loads(line)["messages"], tokenize=True, return_dict=True,
                                  truncation=True, max_length=params["max_seq_length"])
    rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                 "labels": list(enc["input_ids"])})
if lora:
    model = get_peft_model(model, LoraConfig(r=params["lora_r"], lora_alpha=params["lora_alpha"],
                                             target_modules=params["lora_target_modules"].split(","),
                                             fan_in_fan_out=model.config.model_type == "gpt2", task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir=out, num_train_epochs=params["num_train_epochs"],
                         per_device_train_batch_size=params["per_device_train_batch_size"],
                         learning_rate=params["learning_rate"], logging_steps=params["logging_steps"],
                         seed=params["seed"], report_to="none", save_strategy="no", disable_tqdm=True,
                         use_cpu=not cuda, dataloader_pin_memory=cuda, train_sampling_strategy=sampling, **half)
trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=DataCollatorForSeq2Seq(tok))
t = time.perf_counter()
result = trainer.train()
seconds = time.perf_counter() - t
tokens = sum(len(r["input_ids"]) for r in rows) * params["num_train_epochs"]
print("RESULT " + json.dumps({"tokens": tokens, "seconds": seconds, "loss": result.metrics["train_loss"]}))
'''


def run_plain(base: Path, workdir: Path, args: argparse.Namespace, i: int, threads: int = 0) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PLAIN, str(base), str(DATA), json.dumps(parameters(args)),
                           str(workdir / f"plain-{i}-{threads}"), str(threads)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"plain Trainer failed:\n{proc.stderr[-2000:]}")
    return {**json.loads(lines[-1][7:]), "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["llama", "mistral", "qwen2", "phi3", "gpt2"], default="qwen2")
    parser.add_argument("--hidden", type=int, default=128, help="hidden size (heads = hidden / 32)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--no-matched", action="store_true",
                        help="skip the third arm: a plain Trainer with our thread count and length grouping")
    parser.add_argument("--full", action="store_true", help="full fine-tune instead of LoRA")
    parser.add_argument("--no-mlflow", action="store_true", help="our job without MLflow tracking")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import torch

    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        workdir = Path(tmp)
        from finetune.backends.local.basemodel import locate_path

        base = build_base(workdir, args)
        args.targets = locate_path(base).lora_targets()
        results: dict[str, list[dict]] = {"ours": [], "plain": [], "plain-matched": []}
        ours_threads = 0
        for i in range(args.rounds):
            order = ["ours", "plain"] + ([] if args.no_matched else ["plain-matched"])
            for name in order if i % 2 == 0 else order[::-1]:
                if name == "ours":
                    r = run_ours(base, workdir, args, i)
                    ours_threads = r.get("threads") or 0
                else:
                    r = run_plain(base, workdir, args, i, ours_threads if name == "plain-matched" else 0)
                r["tps"] = r["tokens"] / r["seconds"]
                results[name].append(r)
                print(f"round {i + 1} {name:13s}: {r['tokens']} tokens in {r['seconds']:.2f}s = {r['tps']:,.0f} tok/s"
                      f"  (process wall {r['wall']:.1f}s, train loss {r['loss']:.3f})", flush=True)
        med = {name: statistics.median(r["tps"] for r in rs) for name, rs in results.items() if rs}
        print(f"\nmachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__} "
              f"(default threads {torch.get_num_threads()}, ours used {ours_threads or 'default'}), "
              f"{args.arch} {args.layers}x{args.hidden} "
              f"({'full' if args.full else 'LoRA r16 on ' + args.targets}), {args.epochs} epoch(s), batch 8, "
              f"mlflow {'off' if args.no_mlflow else 'on'}")
        print("median tokens/s: " + "  ".join(f"{name} {tps:,.0f}" for name, tps in med.items()))
        print(f"ratio ours / plain Trainer: {med['ours'] / med['plain']:.3f} (goal >= 0.9)")
        if "plain-matched" in med:
            print(f"ratio ours / plain Trainer with the same threads and sampler: "
                  f"{med['ours'] / med['plain-matched']:.3f} (the job's status, MLflow and checkpoint machinery alone)")


if __name__ == "__main__":
    main()
