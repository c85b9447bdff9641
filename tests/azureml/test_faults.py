"""Transient and deployment faults through the real SDK and the emulator: retries live in the client factory
(azure-core's RetryPolicy), `errors.call` only translates, and every failure is one line with a fix."""

from __future__ import annotations

import pytest

from finetune.backends.azureml.client import ClientOptions, RetrySettings, default_options, make_workspace_client
from finetune.backends.azureml.errors import call
from finetune.errors import FinetuneError
from tests.azureml.test_apply import apply, jobs

FAST = RetrySettings(backoff_factor=0.001, backoff_max=0.01)
# Storage requests go through the storage SDK's own BlobServiceClient, which azure-ai-ml builds without MLClient's
# keyword arguments (so without this retry policy; the emulator turns its retries off). The token routes are not
# used by the in-process credential. Every other route is stormed.
NOT_STORMED = ("blob.", "aad.")


def storm(emu, times: int = 3) -> list[str]:
    """429 (Retry-After) then 503 (Retry-After), `times` each, on every Azure ML route."""
    routes = [op for op in emu.operations() if not op.startswith(NOT_STORMED)]
    for op in routes:
        emu.faults.add(op, "throttle", times=times, retry_after=0.001)
        emu.faults.add(op, "unavailable", times=times, retry_after=0.001)
    return routes


@pytest.fixture
def fast_retries(emu):
    """The emulator's options with a millisecond backoff (for faults that send no Retry-After)."""
    with default_options(ClientOptions(transport=emu.transport, credential=emu.credential, polling_interval=0.001,
                                       retry=FAST)):
        yield emu


def statuses(emu, operation: str) -> list[int]:
    return [r.status for r in emu.requests if r.operation == operation]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def test_a_storm_on_every_route_converges_in_one_apply(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    emu.latency = 0.05
    storm(emu)
    code, _, err = apply(capsys, spec)
    assert code == 0, err
    assert len(jobs(emu)) == 1
    # the polls of long-running operations and of the job were stormed too, and retried
    for operation in ("operations.mfeStatus", "operations.computeStatus", "jobs.get", "onlineEndpoints.listKeys",
                      "scoring.score"):
        seen = statuses(emu, operation)
        assert seen[:6] == [429, 429, 429, 503, 503, 503] and 200 in seen[6:], (operation, seen)
    emu.latency = 0.0
    emu.reset_log()
    code, out, err = apply(capsys, spec)
    assert code == 0, err
    assert emu.writes() == []
    assert "Nothing to do" in out


def test_the_retry_lives_in_the_factory_not_in_call(emu):
    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name,
                               options=ClientOptions(transport=emu.transport, credential=emu.credential,
                                                     polling_interval=0.001, retry=FAST))
    from azure.ai.ml.entities import AmlCompute

    emu.faults.add("operations.computeStatus", "error", times=2, status=503, code="ServiceUnavailable")
    poller = ws.compute.begin_create_or_update(AmlCompute(name="c1", size="Standard_NC24ads_A100_v4",
                                                          max_instances=1))
    assert poller.result().provisioning_state == "Succeeded"
    assert statuses(emu, "operations.computeStatus")[:3] == [503, 503, 200]

    attempts = []

    def flaky():
        from azure.core.exceptions import ServiceResponseError

        attempts.append(1)
        raise ServiceResponseError("Connection reset by peer")

    with pytest.raises(FinetuneError) as info:
        call(flaky, "read compute c1")
    assert attempts == [1]  # call() translates; it does not loop
    assert "could not reach Azure ML after retries" in info.value.diagnostics[0].message


def test_every_sdk_pipeline_gets_the_factory_retry_policy(emu):
    from azure.core.pipeline.policies import RetryPolicy

    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name,
                               options=ClientOptions(transport=emu.transport, credential=emu.credential, retry=FAST))
    ws.jobs._get_workspace_url  # noqa: B018 - the SDK derives a pipeline here (workspace discovery)
    from azure.ai.ml._scope_dependent_operations import OperationScope  # noqa: F401 - the SDK is importable

    ws.jobs._runs_operations  # noqa: B018 - run history, dataset and model data-plane clients are built lazily
    clients = {name: c for name, c in vars(ws).items() if name.startswith("_service_client") and c is not None}
    clients["_requests_pipeline"] = ws._requests_pipeline
    assert len(clients) > 10
    for name, client in clients.items():
        pipeline = getattr(getattr(client, "_client", client), "_pipeline", client)
        found = [p for p in pipeline._impl_policies if isinstance(p, RetryPolicy)]
        assert found, name
        assert (found[0].status_retries, found[0].backoff_factor) == (FAST.status, FAST.backoff_factor), name
    # a pipeline the SDK derives (discovery, log downloads) leaves the original's policy chain alone
    derived = ws._requests_pipeline.with_policies(retry_policy=RetryPolicy(retry_total=3))
    chain = ws._requests_pipeline._impl_policies
    assert chain[chain.index(next(p for p in chain if isinstance(p, RetryPolicy))) - 1].next is \
        next(p for p in chain if isinstance(p, RetryPolicy))
    assert next(p for p in derived._impl_policies if isinstance(p, RetryPolicy)).status_retries == FAST.status


def test_a_failed_liveness_probe_shows_the_log_tail_and_the_fix(emu, workdir, capsys):
    spec = workdir / "spec.yaml"
    emu.faults.add("onlineDeployments.create", "liveness_failed")
    code, _, err = apply(capsys, spec)
    assert code == 1, err
    [line] = [line for line in error_lines(err) if "deployment." in line and "skipped" not in line]
    assert "Liveness probe failed" in line
    assert "Container exited with code 137 (OOMKilled)" in line  # the deployment's log tail
    assert "liveness_probe.initial_delay" in line
    assert "bug" not in err and "Traceback" not in err


def test_a_permanent_500_is_one_line_after_retries(fast_retries, workdir, capsys):
    emu = fast_retries
    spec = workdir / "spec.yaml"
    emu.faults.add("operations.mfeStatus", "error", times=None, status=500, message="Internal failure (emulated).")
    code, _, err = apply(capsys, spec)
    assert code == 1, err
    assert len(statuses(emu, "operations.mfeStatus")) > FAST.status  # retried by the client, then given up
    [line] = [line for line in error_lines(err) if line.lstrip().startswith("error: endpoint.")]
    assert "HTTP 500" in line and "after retries" in line and "Internal failure (emulated)." in line
    assert "apply again" in line
    assert "bug" not in err and "Traceback" not in err
