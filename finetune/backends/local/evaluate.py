"""Scoring a trained model on the test split, inside the job process once training has saved the model.

For the fine-tuned model and (once per base model + test rows + settings, cached) its base model, on up to
`max_rows` test rows: the mean token loss on the assistant turns and its perplexity, and the greedy answer to each
row's conversation (everything before its final assistant turn) against that final turn: ROUGE-L (F-measure, the
`rouge-score` package) and exact match (after SQuAD-style normalisation: case, punctuation, articles, spaces).

Metric names are those of Azure ML's model evaluation (azureml-metrics constants: `perplexity`, `rougeL`,
`exact_match`), so one name means one thing on both targets; `test_loss` is the loss the perplexity comes from.
The base model's scores carry a `base_` prefix in MLflow.

The job reads its settings from OUTPUT_DIR/eval-settings.json (written by the backend before launch; absent: no
evaluation) and records the result under `evaluation` in status.json and on the job's MLflow run. A failed
evaluation is recorded (`error`) and does not fail the job: the trained model is good either way.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finetune.backends.local.chatdata import IGNORE_INDEX, ChatCollator, encode_conversation, read_conversations
from finetune.backends.local.proc import read_json, write_json_atomic

SETTINGS_FILE = "eval-settings.json"
METRICS = ("test_loss", "perplexity", "rougeL", "exact_match")
HIGHER_IS_BETTER = {"test_loss": False, "perplexity": False, "rougeL": True, "exact_match": True}
CACHE_FORMAT = 1
BATCH = 16


@dataclass
class EvalSettings:
    test_file: str
    max_rows: int = 50
    max_new_tokens: int = 64
    base_model: bool = True
    cache_dir: str | None = None  # where base-model scores are kept (the spec's state folder)

    def save(self, output_dir: str | Path) -> None:
        write_json_atomic(Path(output_dir) / SETTINGS_FILE, asdict(self))

    @classmethod
    def load(cls, output_dir: str | Path) -> EvalSettings | None:
        data = read_json(Path(output_dir) / SETTINGS_FILE)
        return None if data is None else cls(**data)

    def scoring(self) -> dict[str, Any]:
        """What decides the scores besides the model and the rows."""
        return {"max_rows": self.max_rows, "max_new_tokens": self.max_new_tokens, "decoding": "greedy"}


def split_rows(path: str | Path, max_rows: int) -> list[tuple[list[dict[str, str]], str]]:
    """(conversation before the final assistant turn, that turn's text) for the first max_rows rows that have one."""
    rows = []
    for messages in read_conversations(path):
        if len(rows) >= max_rows:
            break
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last:  # an assistant turn with something before it
            rows.append((messages[:last], messages[last]["content"]))
    return rows


# --- the metrics (no torch) ---

def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def text_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-L F-measure and exact-match rate of predictions against references."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = list(zip(predictions, references, strict=True))
    n = len(pairs)
    if n == 0:
        return {}
    rouge = sum(scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in pairs)
    exact = sum(normalize_answer(pred) == normalize_answer(ref) for pred, ref in pairs)
    return {"rougeL": rouge / n, "exact_match": exact / n}


# --- scoring a model (torch) ---

def _load(location: str, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune.backends.local.tiny import CHATML_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE  # what training formatted with (see training.load_base)
    dtype = torch.float32 if device == "cpu" else "auto"
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype).to(device).eval()
    return tokenizer, model


def _mean_loss(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_len: int,
               device: str) -> float:
    """Token-weighted mean cross-entropy on the assistant tokens (the training objective)."""
    import torch

    encoded = [e for e in (encode_conversation(tokenizer, c, max_len) for c in conversations)
               if any(t != IGNORE_INDEX for t in e["labels"])]
    collate = ChatCollator(tokenizer.pad_token_id)
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(encoded), BATCH):
            batch = {k: v.to(device) for k, v in collate(encoded[i: i + BATCH]).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels,
                                                       ignore_index=IGNORE_INDEX, reduction="sum")
            total += float(losses)
            count += int((labels != IGNORE_INDEX).sum())
    return total / count if count else float("nan")


def _answers(model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int, max_len: int,
             device: str) -> list[str]:
    """Greedy answers, batched with left padding (prompts cut from the left to leave room for the answer)."""
    import torch

    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    room = max(8, max_len - max_new_tokens)
    answers = []
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            enc = tokenizer(texts[i: i + BATCH], return_tensors="pt", padding=True, truncation=True,
                            max_length=room, add_special_tokens=False).to(device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [a.strip() for a in answers]


def score_model(location: str, rows: list[tuple[list[dict[str, str]], str]], settings: EvalSettings,
                max_seq_length: int) -> dict[str, float]:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, model = _load(location, device)
    if device == "cpu":
        from finetune.backends.local import cputhreads

        cputhreads.configure(model)
    max_len = min(max_seq_length, getattr(model.config, "max_position_embeddings", None) or max_seq_length)
    full = [prompt + [{"role": "assistant", "content": answer}] for prompt, answer in rows]
    loss = _mean_loss(model, tokenizer, full, max_len, device)
    predictions = _answers(model, tokenizer, [p for p, _ in rows], settings.max_new_tokens, max_len, device)
    scores = {"test_loss": loss, "perplexity": math.exp(min(loss, 700.0)) if math.isfinite(loss) else loss,
              **text_scores(predictions, [a for _, a in rows])}
    return {k: round(v, 6) for k, v in scores.items()}


# --- the job's evaluation step ---

def _files_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def base_identity(model_source: Any, base_dir: Path) -> tuple[str, str]:
    """(where the base model loads from, what identifies it). A tiny base is built per job from the training data,
    so its files identify it; a hub or path model is named by its source."""
    if model_source.tiny is not None:
        return str(base_dir), "files:" + _files_digest(base_dir)
    if model_source.path:
        return model_source.path, model_source.describe()
    return model_source.hf, model_source.describe()


def base_cache_key(identity: str, rows: list[tuple[list[dict[str, str]], str]], settings: EvalSettings) -> str:
    data = json.dumps({"format": CACHE_FORMAT, "base": identity, "rows": rows, "scoring": settings.scoring()},
                      sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def evaluate_job(output_dir: str | Path, model_dir: str, settings: EvalSettings, config: Any) -> dict[str, Any]:
    """The evaluation block recorded for one job (see the module docstring)."""
    started = time.perf_counter()
    rows = split_rows(settings.test_file, settings.max_rows)
    if not rows:
        return {"skipped": f"{settings.test_file} has no rows with an assistant answer"}
    max_len = int(config.parameters["max_seq_length"])
    result: dict[str, Any] = {"rows": len(rows), "max_rows": settings.max_rows, "test_file": settings.test_file,
                              "model": score_model(model_dir, rows, settings, max_len)}
    if settings.base_model:
        location, identity = base_identity(config.model, Path(output_dir) / "base")
        key = base_cache_key(identity, rows, settings)
        cache = Path(settings.cache_dir or Path(output_dir) / "eval-cache") / f"base-{key[:32]}.json"
        cached = read_json(cache)
        if cached is not None and cached.get("key") == key:
            result["base"], result["base_cached"] = cached["scores"], True
        else:
            result["base"], result["base_cached"] = score_model(location, rows, settings, max_len), False
            write_json_atomic(cache, {"key": key, "base": identity, "scores": result["base"]})
        result["gain"] = {m: round(result["model"][m] - result["base"][m], 6) for m in METRICS
                          if m in result["model"] and m in result["base"]}
    result["seconds"] = round(time.perf_counter() - started, 3)  # scoring; run_after_training adds the logging
    return result


def mlflow_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The evaluation as MLflow metric names: the model's under Azure ML's names, the base's with `base_`."""
    out = {name: value for name, value in (evaluation.get("model") or {}).items()}
    out.update({f"base_{name}": value for name, value in (evaluation.get("base") or {}).items()})
    return {k: float(v) for k, v in out.items() if isinstance(v, int | float) and math.isfinite(v)}


def log_to_mlflow(tracking_uri: str, run_id: str, evaluation: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    from finetune.backends.local.tracking import client

    c = client(tracking_uri)
    ts = int(time.time() * 1000)
    existing = c.get_run(run_id).data.params
    params = [Param(k, str(v)) for k, v in (("evaluation_rows", evaluation["rows"]),
                                              ("evaluation_max_rows", evaluation["max_rows"]))
              if k not in existing]
    c.log_batch(run_id, metrics=[Metric(k, v, ts, 0) for k, v in mlflow_metrics(evaluation).items()], params=params)
    c.set_terminated(run_id, status="FINISHED")  # the run's end time then covers the evaluation too


def run_after_training(output_dir: str | Path, model_dir: str, config: Any,
                       mlflow_run_id: str | None) -> dict[str, Any] | None:
    """The job's evaluation step: None without settings; failures are recorded, never raised."""
    settings = EvalSettings.load(output_dir)
    if settings is None:
        return None
    started = time.perf_counter()
    try:
        evaluation = evaluate_job(output_dir, model_dir, settings, config)
        if "model" in evaluation and config.mlflow is not None and mlflow_run_id:
            log_to_mlflow(config.mlflow.tracking_uri, mlflow_run_id, evaluation)
            evaluation["seconds"] = round(time.perf_counter() - started, 3)
        return evaluation
    except Exception as exc:  # noqa: BLE001 - the model is trained; the evaluation's failure is reported
        return {"error": f"{type(exc).__name__}: {exc}"}
