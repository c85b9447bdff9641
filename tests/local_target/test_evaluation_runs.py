"""The local target through the CLI: the test split scored after training (apply's summary, status, MLflow),
then `finetune runs` over two trainings (what changed, versions, deployed) and `--compare`."""

from __future__ import annotations

import json

from test_lifecycle import run, spec  # noqa: F401 - `spec` is the fixture

from finetune.backends.local.tracking import client


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_evaluation_then_runs_over_two_trainings(spec, capsys):  # noqa: F811
    spec.write_text(spec.read_text() + "evaluation: {max_rows: 5, max_new_tokens: 12}\n")
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 0, err
    assert "test split, 5 rows:" in out and "perplexity" in out and "(base " in out

    code, out, _ = run(capsys, "status", str(spec), "--json")
    evaluation = json.loads(out)["evaluation"]
    assert code == 0 and evaluation["rows"] == 5 and evaluation["base_cached"] is False
    assert set(evaluation["model"]) == set(evaluation["base"]) == {"test_loss", "perplexity", "rougeL",
                                                                   "exact_match"}
    code, out, _ = run(capsys, "status", str(spec))
    assert "test split, 5 rows:" in out and "rougeL" in out

    code, out, _ = run(capsys, "runs", str(spec), "--json")
    [first] = json.loads(out)["runs"]
    assert first["model"] == "local-test-model@1" and first["deployed"] == ["deployment.local-test/local"]
    assert first["status"] == "Completed" and first["changed"] is None and first["usd"] == 0.0
    assert first["metrics"]["perplexity"] == evaluation["model"]["perplexity"]
    assert first["inputs"]["parameters"]["learning_rate"] == 0.001
    db = spec.parent / ".finetune" / "mlflow.db"
    mlflow_run = client(f"sqlite:///{db}").get_run(first["link"].removeprefix("mlflow run "))
    assert mlflow_run.data.metrics["base_perplexity"] == evaluation["base"]["perplexity"]

    edit(spec, "learning_rate: 1e-3", "learning_rate: 2e-3")
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 0, err
    assert "(base scores cached)" in out  # same base, same rows: the base is not scored again

    code, out, _ = run(capsys, "runs", str(spec), "--json")
    report = json.loads(out)
    newest, oldest = report["runs"]
    assert oldest["name"] == first["name"]
    assert newest["changed"] == ["learning_rate 0.001 -> 0.002"]
    assert newest["model"] == "local-test-model@2" and newest["deployed"] and not oldest["deployed"]
    assert report["deployed"] == {"deployment.local-test/local": "local-test-model@2"}

    code, out, _ = run(capsys, "runs", str(spec))
    assert code == 0 and "<- deployed" in out and "learning_rate 0.001 -> 0.002" in out
    code, out, _ = run(capsys, "runs", str(spec), "--compare", "2", newest["name"])
    assert code == 0 and "inputs changed (a -> b): learning_rate 0.001 -> 0.002" in out and "perplexity" in out
    code, _, err = run(capsys, "runs", str(spec), "--compare", "1", "ft-")  # both names start so
    assert code == 1 and "2 runs match 'ft-'" in err

    # turning evaluation off is not a training input: nothing retrains
    spec.write_text(spec.read_text().replace("evaluation: {max_rows: 5, max_new_tokens: 12}",
                                             "evaluation: {enabled: false}"))
    code, out, err = run(capsys, "apply", str(spec), "--auto-approve")
    assert code == 0 and "Nothing to do" in out, err
