"""The smoke test and `invoke` on the Azure ML target, through the real SDK and the emulator: the question, the
expected answer and the answer are shown; the last result is kept for `status`; generation options reach the
scoring request in the endpoint's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ultrachat-mini" / "test_gen.jsonl"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def scoring_bodies(emu) -> list[dict]:
    return [r.body for r in emu.requests if r.operation == "scoring.score"]


def sample_pairs() -> dict[str, str]:
    """question (last user turn) -> expected answer (final assistant turn), for every row of the sample source."""
    pairs = {}
    for line in FIXTURE.read_text().splitlines():
        messages = json.loads(line)["messages"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        pairs[users[-1]] = messages[-1]["content"]
    return pairs


def test_smoke_test_shows_question_expected_answer_and_status_keeps_it(emu, workdir, capsys):
    spec = str(workdir / "spec.yaml")
    code, out, err = run(capsys, "apply", spec, "--auto-approve", "--json")
    assert code == 0, err
    smoke = next(s for s in json.loads(out)["steps"] if s["address"].startswith("smoke_test."))["outputs"]
    pairs = sample_pairs()
    assert smoke["question"] in pairs and smoke["expected"] == pairs[smoke["question"]]
    assert smoke["answer"] == f"[demo] emulated reply to: {smoke['question'][:80]}"
    [body] = scoring_bodies(emu)
    conversation = body["input_data"]["input_string"][0]
    assert conversation[-1] == {"role": "user", "content": smoke["question"]}  # the expected answer is not sent
    assert body["input_data"]["parameters"] == {"temperature": 0.6, "top_p": 0.9, "do_sample": True,
                                                "max_new_tokens": 200}

    code, out, _ = run(capsys, "status", spec, "--json")
    last = json.loads(out)["smoke_test"]
    assert code == 0 and last["ok"] and last["deployment"] == "demo"
    assert (last["question"], last["expected"], last["answer"]) == (smoke["question"], smoke["expected"],
                                                                    smoke["answer"])
    code, out, _ = run(capsys, "status", spec)
    assert "Last smoke test on deployment demo" in out
    # multi-line texts continue aligned under their first line
    answer = smoke["answer"].splitlines()
    assert f"  answer:   {answer[0]}\n" + "".join(f"            {line}\n" for line in answer[1:]) in out
    assert f"  expected: {smoke['expected'].splitlines()[0]}\n" in out

    # an unchanged re-apply runs no smoke test and keeps the record; destroying the endpoint forgets it
    emu.reset_log()
    assert run(capsys, "apply", spec, "--auto-approve")[0] == 0
    assert scoring_bodies(emu) == []
    assert json.loads(run(capsys, "status", spec, "--json")[1])["smoke_test"]["answer"] == smoke["answer"]
    assert run(capsys, "destroy", spec, "--auto-approve")[0] == 0
    assert "smoke_test" not in json.loads(run(capsys, "status", spec, "--json")[1])


def test_failed_smoke_test_is_what_status_shows_until_one_passes(emu, workdir, capsys):
    spec = str(workdir / "spec.yaml")
    emu.faults.add("scoring.score", "error", times=None, status=400, code="BadRequest",
                   message="the scoring script crashed")
    code, _, err = run(capsys, "apply", spec, "--auto-approve")
    assert code == 1 and "smoke_test." in err
    code, out, _ = run(capsys, "status", spec)
    assert code == 0
    failed = next(line for line in out.splitlines() if line.startswith("Last smoke test"))
    assert "FAILED" in failed and "scoring script crashed" in failed
    emu.faults.clear()
    assert run(capsys, "apply", spec, "--auto-approve")[0] == 0
    last = json.loads(run(capsys, "status", spec, "--json")[1])["smoke_test"]
    assert last["ok"] and last["answer"].startswith("[demo] emulated reply to: ")


def test_invoke_shows_the_exchange_and_sends_generation_options(emu, workdir, capsys):
    spec = str(workdir / "spec.yaml")
    assert run(capsys, "apply", spec, "--auto-approve")[0] == 0
    emu.reset_log()

    code, out, _ = run(capsys, "invoke", spec, "--temperature", "0.2", "--top-p", "0.5", "--max-new-tokens", "7")
    assert code == 0
    [body] = scoring_bodies(emu)
    assert body["input_data"]["parameters"] == {"temperature": 0.2, "top_p": 0.5, "do_sample": True,
                                                "max_new_tokens": 7}
    question = body["input_data"]["input_string"][0][-1]["content"]
    lines = out.splitlines()
    assert lines[0] == f"question: {question.splitlines()[0]}"
    assert sample_pairs()[question].splitlines()[0] in [line.removeprefix("expected: ") for line in lines]
    answer = f"[demo] emulated reply to: {question[:80]}".splitlines()
    assert out.endswith(f"answer:   {answer[0]}\n" + "".join(f"          {line}\n" for line in answer[1:]))

    emu.reset_log()
    code, out, _ = run(capsys, "invoke", spec, "-m", "Say hi", "--temperature", "0", "--json")
    assert code == 0
    # greedy: no temperature (Hugging Face refuses to sample at 0), do_sample off; the spec's other values stay
    [body] = scoring_bodies(emu)
    assert body["input_data"]["parameters"] == {"top_p": 0.9, "do_sample": False, "max_new_tokens": 200}
    assert body["input_data"]["input_string"] == [[{"role": "user", "content": "Say hi"}]]
    assert json.loads(out) == {"question": "Say hi", "expected": None, "answer": "[demo] emulated reply to: Say hi",
                               "parameters": body["input_data"]["parameters"]}


@pytest.mark.parametrize(("option", "value"), [("--top-p", "1.5"), ("--temperature", "-1.0"),
                                               ("--max-new-tokens", "0")])
def test_invoke_refuses_out_of_range_generation_options(emu, workdir, capsys, option, value):
    code, out, err = run(capsys, "invoke", str(workdir / "spec.yaml"), "-m", "hi", option, value)
    assert code == 1 and out == ""
    assert f"Error: Invalid value for '{option}': {value} is not in the range" in err and "Traceback" not in err
    assert scoring_bodies(emu) == []


def test_an_invoke_naming_a_deployment_does_not_steer_the_next_one(emu, workdir, capsys):
    """The SDK keeps scoring headers in one class-level dict; a second invoke in the process must not inherit the
    first one's deployment (folder mode runs many specs in one process)."""
    spec = str(workdir / "spec.yaml")
    assert run(capsys, "apply", spec, "--auto-approve")[0] == 0
    emu.reset_log()
    assert run(capsys, "invoke", spec, "-m", "first", "--deployment", "demo")[0] == 0
    assert run(capsys, "invoke", spec, "-m", "second")[0] == 0
    first, second = [r for r in emu.requests if r.operation == "scoring.score"]
    lowered = [{k.lower(): v for k, v in r.headers.items()} for r in (first, second)]
    assert lowered[0].get("azureml-model-deployment") == "demo"
    assert "azureml-model-deployment" not in lowered[1]
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    assert "Authorization" not in EndpointInvokeFields.DEFAULT_HEADER  # the key does not stay in the process
