"""Evaluation after training: the metrics themselves, then the job's real evaluation step (detached process):
scores for the model and its base, the base's cache, MLflow, and a failed evaluation that leaves the job Completed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import QUICKSTART, heavy, make_config, read_status

from finetune.backends.local import trainjob
from finetune.backends.local.evaluate import (
    SETTINGS_FILE,
    EvalSettings,
    mlflow_metrics,
    normalize_answer,
    split_rows,
    text_scores,
)
from finetune.backends.local.trainjob import JobState


def test_text_scores_exact_partial_and_disjoint():
    scores = text_scores(["Water it weekly.", "the cat sat", "zzz"],
                         ["water it weekly", "the cat sat on the mat", "Prune in spring"])
    assert scores["exact_match"] == pytest.approx(1 / 3)  # case and punctuation do not count
    # rougeL F: 1.0, then LCS 3 of (3, 6 tokens): 2*0.5*1/(1.5) = 2/3, then 0
    assert scores["rougeL"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert normalize_answer("  The  Snake-plant!  ") == "snakeplant"
    assert text_scores([], []) == {}
    with pytest.raises(ValueError):
        text_scores(["a"], [])


def test_split_rows_takes_the_final_answer_and_stops_at_max_rows(tmp_path):
    path = tmp_path / "test.jsonl"
    rows = [{"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]},
            {"messages": [{"role": "assistant", "content": "no question before me"}]},
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q2"},
                          {"role": "assistant", "content": "a2"}, {"role": "user", "content": "q3"},
                          {"role": "assistant", "content": "a3"}]},
            {"messages": [{"role": "user", "content": "q4"}, {"role": "assistant", "content": "a4"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = split_rows(path, 2)
    assert [answer for _, answer in got] == ["a1", "a3"]
    assert got[1][0][-1] == {"role": "user", "content": "q3"} and len(got[1][0]) == 4
    assert len(split_rows(path, 50)) == 3


def test_mlflow_names_follow_azure_and_prefix_the_base():
    evaluation = {"model": {"perplexity": 3.0, "rougeL": 0.5, "exact_match": 0.0, "test_loss": 1.1},
                  "base": {"perplexity": 900.0, "rougeL": 0.0, "exact_match": 0.0, "test_loss": float("nan")}}
    assert mlflow_metrics(evaluation) == {"perplexity": 3.0, "rougeL": 0.5, "exact_match": 0.0, "test_loss": 1.1,
                                          "base_perplexity": 900.0, "base_rougeL": 0.0, "base_exact_match": 0.0}


@pytest.fixture(scope="module")
def test_file(tmp_path_factory) -> Path:
    rows = (QUICKSTART / "test.jsonl").read_text().splitlines()
    path = tmp_path_factory.mktemp("eval") / "test.jsonl"
    path.write_text("\n".join(rows[:6]) + "\n")
    return path


def _run_job(chat_files, out: Path, tracking_uri, settings: EvalSettings | None, **parameters):
    config = make_config(chat_files, out, tracking_uri, parameters={"max_steps": 6, **parameters})
    out.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        settings.save(out)
    trainjob.launch(config)
    final = trainjob.wait(out, timeout=300)
    assert final.state is JobState.COMPLETED, final.error
    return final


def test_job_scores_model_and_base_caches_the_base_and_logs_to_mlflow(chat_files, test_file, tmp_path,
                                                                      tracking_uri):
    heavy()
    cache = tmp_path / "cache"
    settings = EvalSettings(test_file=str(test_file), max_rows=4, max_new_tokens=12, cache_dir=str(cache))
    first = _run_job(chat_files, tmp_path / "a", tracking_uri, settings)
    evaluation = first.evaluation
    assert evaluation["rows"] == 4 and evaluation["base_cached"] is False
    for scores in (evaluation["model"], evaluation["base"]):
        assert set(scores) == {"test_loss", "perplexity", "rougeL", "exact_match"}
        assert 0 <= scores["rougeL"] <= 1 and 0 <= scores["exact_match"] <= 1
        assert scores["perplexity"] == pytest.approx(math.exp(scores["test_loss"]), rel=1e-4)
    # a random base is far worse at predicting the answers than the model trained on them
    assert evaluation["model"]["test_loss"] < evaluation["base"]["test_loss"]
    assert evaluation["gain"]["test_loss"] == pytest.approx(evaluation["model"]["test_loss"] -
                                                            evaluation["base"]["test_loss"], abs=1e-5)
    assert len(list(cache.glob("base-*.json"))) == 1

    from finetune.backends.local.tracking import client

    run = client(tracking_uri).get_run(first.mlflow_run_id)
    assert run.data.metrics["perplexity"] == pytest.approx(evaluation["model"]["perplexity"])
    assert run.data.metrics["base_rougeL"] == pytest.approx(evaluation["base"]["rougeL"])
    assert run.data.params["evaluation_rows"] == "4" and run.info.status == "FINISHED"

    # Another run on the same base (only the learning rate differs): the base is not scored again.
    second = _run_job(chat_files, tmp_path / "b", tracking_uri, settings, learning_rate=1e-3)
    assert second.evaluation["base_cached"] is True
    assert second.evaluation["base"] == evaluation["base"]
    assert second.evaluation["model"] != evaluation["model"]
    # More rows is another question: scored afresh, a second cache entry.
    more = EvalSettings(test_file=str(test_file), max_rows=5, max_new_tokens=12, cache_dir=str(cache))
    third = _run_job(chat_files, tmp_path / "c", tracking_uri, more, learning_rate=2e-3)
    assert third.evaluation["base_cached"] is False and third.evaluation["rows"] == 5
    assert len(list(cache.glob("base-*.json"))) == 2


def test_failed_evaluation_is_recorded_and_the_job_still_completes(chat_files, tmp_path):
    heavy()
    missing = EvalSettings(test_file=str(tmp_path / "nope.jsonl"), max_rows=3, base_model=False)
    final = _run_job(chat_files, tmp_path / "job", None, missing)
    assert final.model_dir and "FileNotFoundError" in final.evaluation["error"]
    assert read_status(tmp_path / "job")["phase"] == ""


def test_no_settings_means_no_evaluation(chat_files, tmp_path):
    heavy()
    final = _run_job(chat_files, tmp_path / "job", None, None)
    assert final.evaluation is None and not (tmp_path / "job" / SETTINGS_FILE).exists()
