"""The server's request shape and HTTP behaviour, with a stand-in generator (no model, no torch)."""

import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from finetune.backends.local.server import BadRequest, make_handler, parse_request, score

MSGS = [{"role": "user", "content": "hi"}]


def test_nested_and_flat_input_strings():
    assert parse_request({"input_data": {"input_string": [MSGS]}})[0] == MSGS
    messages, params = parse_request({"input_data": {"input_string": MSGS, "parameters": {
        "temperature": "0.2", "top_p": 0.5, "do_sample": "true", "max_tokens": 99999}}})
    assert messages == MSGS
    assert params == {"temperature": 0.2, "top_p": 0.5, "do_sample": True, "max_new_tokens": 1024}


def test_zero_temperature_means_greedy():
    _, params = parse_request({"input_data": {"input_string": MSGS, "parameters": {"temperature": 0}}})
    assert params["do_sample"] is False


@pytest.mark.parametrize("body", [{}, {"input_data": {}}, {"input_data": {"input_string": []}},
                                  {"input_data": {"input_string": [{"role": "user"}]}},
                                  {"input_data": {"input_string": [MSGS, MSGS]}},
                                  {"input_data": {"input_string": MSGS, "parameters": {"top_p": "x"}}}])
def test_bad_requests(body):
    with pytest.raises(BadRequest):
        parse_request(body)


class EchoGenerator:
    def generate(self, messages, params):
        return f"echo: {messages[-1]['content']} ({params['max_new_tokens']})"


@pytest.fixture
def http_server():
    servers = []

    def start(key=None):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(EchoGenerator(), "/m", key))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _post(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_score_health_and_errors(http_server):
    url = http_server()
    assert score(url, MSGS, {"max_new_tokens": 5}) == "echo: hi (5)"
    with urllib.request.urlopen(url + "/health", timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "ok"
    assert _post(url + "/score", {"input_data": {}})[0] == 400
    assert _post(url + "/nope", {})[0] == 404


def test_bearer_key(http_server):
    url = http_server(key="s3cret")
    assert _post(url + "/score", {"input_data": {"input_string": MSGS}})[0] == 401
    assert _post(url + "/score", {"input_data": {"input_string": MSGS}},
                 {"Authorization": "Bearer wrong"})[0] == 401
    assert score(url, MSGS, key="s3cret").startswith("echo: hi")


def test_score_errors_are_server_errors(http_server):
    from finetune.backends.local.server import ServerError

    url = http_server(key="k")
    with pytest.raises(ServerError, match="HTTP 401 .*missing or wrong bearer key"):
        score(url, MSGS)
    with pytest.raises(ServerError, match="no answer"):
        score("http://127.0.0.1:9", MSGS, timeout=2)
