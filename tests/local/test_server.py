"""The chat server process: start, answer the Azure ML request shape, stop, notice a dead server."""

import os
import signal
import time

import pytest

from finetune.backends.local import server

MESSAGES = [{"role": "user", "content": "How often should I water my pothos?"}]


def test_start_score_stop(trained_job, tmp_path):
    state = tmp_path / "server.json"
    info = server.start_server(trained_job["status"].model_dir, state, key="k")
    try:
        assert server.server_status(state).state == "alive"
        assert info.port > 0 and info.pid != os.getpid()
        answer = server.score(info.url, MESSAGES, {"max_new_tokens": 8, "temperature": 0}, key="k")
        assert isinstance(answer, str)
        with pytest.raises(server.ServerError, match="HTTP 401"):
            server.score(info.url, MESSAGES)
        # Starting again for the same model adopts the running server.
        assert server.start_server(trained_job["status"].model_dir, state).pid == info.pid
    finally:
        assert server.stop_server(state) is True
    assert server.server_status(state).state == "absent" and not state.exists()
    assert server.stop_server(state) is False


def test_dead_server_is_noticed(trained_job, tmp_path):
    state = tmp_path / "server.json"
    info = server.start_server(trained_job["status"].model_dir, state)
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.server_status(state).state != "dead" and time.monotonic() < deadline:
        time.sleep(0.05)
    status = server.server_status(state)
    assert status.state == "dead" and "gone" in status.detail
    assert server.stop_server(state) is False and not state.exists()


def test_start_failure_is_reported(tmp_path):
    with pytest.raises(server.ServerError, match="exited"):
        server.start_server(tmp_path / "no-model", tmp_path / "s.json", timeout=60)
