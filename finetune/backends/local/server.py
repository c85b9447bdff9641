"""A local chat-completion server speaking the Azure ML request/response shape.

    python -m finetune.backends.local.server --model DIR --port 0 --state FILE [--host 127.0.0.1]

POST /score  {"input_data": {"input_string": [[{"role", "content"}, ...]] | [{"role", "content"}, ...],
                             "parameters": {"temperature", "top_p", "do_sample", "max_new_tokens"}}}
          -> {"output": "<assistant text>"}
GET /health -> {"status": "ok", "model": DIR}
With FINETUNE_SERVER_KEY set in its environment, /score requires `Authorization: Bearer <key>`.
The state file (JSON: pid, port, host, url, model_dir, started_at) is written once the socket listens.

Caller side: start_server(...) -> ServerInfo, server_status(state) -> ServerStatus, stop_server(state).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from finetune.backends.local.proc import (
    now_iso,
    pid_alive,
    pid_runs_module,
    read_json,
    spawn_detached,
    tail,
    write_json_atomic,
)

MODULE = "finetune.backends.local.server"
KEY_ENV = "FINETUNE_SERVER_KEY"
DEFAULT_PARAMETERS = {"temperature": 0.7, "top_p": 0.9, "do_sample": True, "max_new_tokens": 64}
MAX_NEW_TOKENS_CAP = 1024
MAX_BODY_BYTES = 1 << 20


class ServerError(RuntimeError):
    """The local server could not be started or stopped."""


class BadRequest(ValueError):
    pass


# --- request handling (no torch: testable on its own) ---

def parse_request(body: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Messages and generation parameters from an Azure ML chat-completion request body."""
    data = body.get("input_data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or "input_string" not in data:
        raise BadRequest("expected {'input_data': {'input_string': [...], 'parameters': {...}}}")
    messages = data["input_string"]
    if isinstance(messages, list) and messages and isinstance(messages[0], list):
        if len(messages) != 1:
            raise BadRequest("one conversation per request")
        messages = messages[0]
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages):
        raise BadRequest("input_string must be a list of {'role': str, 'content': str} messages")
    params = dict(DEFAULT_PARAMETERS)
    given = data.get("parameters") or {}
    if not isinstance(given, dict):
        raise BadRequest("parameters must be an object")
    if "max_tokens" in given and "max_new_tokens" not in given:
        given = {**given, "max_new_tokens": given["max_tokens"]}
    try:
        for key in ("temperature", "top_p"):
            if key in given:
                params[key] = float(given[key])
        if "max_new_tokens" in given:
            params["max_new_tokens"] = max(1, min(int(given["max_new_tokens"]), MAX_NEW_TOKENS_CAP))
        if "do_sample" in given:
            params["do_sample"] = str(given["do_sample"]).lower() in {"true", "1"}
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"bad parameter: {exc}") from exc
    if params["temperature"] <= 0:
        params["do_sample"] = False
    return [{"role": m["role"], "content": m["content"]} for m in messages], params


class Generator:
    """The model behind the server; one generation at a time (torch on CPU is already using every core)."""

    def __init__(self, model_dir: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        dtype = torch.float32 if self.device == "cpu" else "auto"
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        if self.device == "cpu":
            from finetune.backends.local import cputhreads

            cputhreads.configure(self.model)
        self.lock = threading.Lock()

    def generate(self, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True, return_tensors="pt").to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": params["max_new_tokens"], "do_sample": params["do_sample"]}
        if params["do_sample"]:
            kwargs.update(temperature=params["temperature"], top_p=params["top_p"])
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self.lock, self.torch.inference_mode():
            out = self.model.generate(**enc, pad_token_id=pad, **kwargs)
        new_tokens = out[0, enc["input_ids"].shape[1]:]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def make_handler(generator: Any, model_dir: str, key: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "finetune-local/1"

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in {"/health", ""}:
                self._send(200, {"status": "ok", "model": model_dir})
            else:
                self._send(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/score":
                self._send(404, {"error": f"no route {self.path}"})
                return
            if key is not None and self.headers.get("Authorization", "") != f"Bearer {key}":
                self._send(401, {"error": "missing or wrong bearer key"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    raise BadRequest("request body too large")
                messages, params = parse_request(json.loads(self.rfile.read(length) or b"{}"))
            except (BadRequest, json.JSONDecodeError, ValueError) as exc:
                self._send(400, {"error": str(exc)})
                return
            try:
                self._send(200, {"output": generator.generate(messages, params)})
            except Exception as exc:  # a failed generation is the request's failure, not the server's
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"[{now_iso()}] {self.address_string()} {format % args}\n")

    return Handler


def serve(model_dir: str, port: int, state_path: str, host: str = "127.0.0.1") -> None:
    generator = Generator(model_dir)  # load before listening: "healthy" means ready to answer
    key = os.environ.get(KEY_ENV) or None
    httpd = ThreadingHTTPServer((host, port), make_handler(generator, model_dir, key))
    httpd.daemon_threads = True
    actual_port = httpd.server_address[1]

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    write_json_atomic(state_path, {"pid": os.getpid(), "host": host, "port": actual_port,
                                   "url": f"http://{host}:{actual_port}", "model_dir": model_dir,
                                   "auth": key is not None, "started_at": now_iso()})
    print(f"serving {model_dir} on http://{host}:{actual_port}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        state = read_json(state_path)
        if state and state.get("pid") == os.getpid():
            Path(state_path).unlink(missing_ok=True)


# --- caller side ---

@dataclass
class ServerInfo:
    pid: int
    host: str
    port: int
    url: str
    model_dir: str
    state_path: str
    started_at: str | None = None

    @property
    def score_url(self) -> str:
        return f"{self.url}/score"


@dataclass
class ServerStatus:
    state: str  # "alive" | "dead" (state file left by a process that is gone or not answering) | "absent"
    info: ServerInfo | None = None
    detail: str = ""


def _info(state: dict[str, Any], state_path: str | Path) -> ServerInfo:
    return ServerInfo(pid=int(state["pid"]), host=state["host"], port=int(state["port"]), url=state["url"],
                      model_dir=state["model_dir"], state_path=str(state_path), started_at=state.get("started_at"))


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def server_status(state_path: str | Path, check_health: bool = True) -> ServerStatus:
    state = read_json(state_path)
    if not state or "pid" not in state:
        return ServerStatus("absent")
    info = _info(state, state_path)
    if not pid_alive(info.pid) or not pid_runs_module(info.pid, MODULE):
        return ServerStatus("dead", info, f"process {info.pid} is gone")
    if check_health and not health(info.url):
        return ServerStatus("dead", info, f"process {info.pid} runs but {info.url}/health does not answer")
    return ServerStatus("alive", info)


def start_server(model_dir: str | Path, state_path: str | Path, *, port: int = 0, host: str = "127.0.0.1",
                 key: str | None = None, log_path: str | Path | None = None, timeout: float = 120.0,
                 env: dict[str, str] | None = None) -> ServerInfo:
    """Start a detached server and wait until it answers /health. An alive server for the same model is reused;
    one serving another model is stopped first. Raises ServerError with the log's tail if it does not come up."""
    model_dir = str(Path(model_dir).resolve())
    state_path = Path(state_path)
    current = server_status(state_path)
    if current.state == "alive" and current.info and current.info.model_dir == model_dir:
        return current.info
    stop_server(state_path)
    log_path = Path(log_path) if log_path else state_path.with_suffix(".log")
    child_env = dict(env or {})
    if key:
        child_env[KEY_ENV] = key  # through the environment: a key on the command line shows up in `ps`
    child = spawn_detached(["-m", MODULE, "--model", model_dir, "--port", str(port), "--host", host,
                            "--state", str(state_path)], log_path, env=child_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ServerError(f"server exited with {child.returncode} while starting:\n{tail(log_path)}")
        state = read_json(state_path)
        if state and state.get("pid") == child.pid and health(state["url"], timeout=1.0):
            return _info(state, state_path)
        time.sleep(0.1)
    _terminate(child.pid)
    raise ServerError(f"server did not become healthy within {timeout:.0f}s:\n{tail(log_path)}")


def stop_server(state_path: str | Path, timeout: float = 10.0) -> bool:
    """SIGTERM the server recorded in state_path (SIGKILL after timeout); remove the state file.
    Returns True if a live server was stopped. Never signals a pid that no longer runs our server module."""
    state_path = Path(state_path)
    state = read_json(state_path)
    stopped = False
    if state and "pid" in state:
        pid = int(state["pid"])
        if pid_alive(pid) and pid_runs_module(pid, MODULE):
            _terminate(pid, timeout)
            stopped = True
    state_path.unlink(missing_ok=True)
    return stopped


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def score(url: str, messages: list[dict[str, str]], parameters: dict[str, Any] | None = None,
          key: str | None = None, timeout: float = 60.0) -> str:
    """One request in the Azure ML shape; returns the assistant text. Failures raise ServerError (with the HTTP
    status and the server's error message when there is one)."""
    body = json.dumps({"input_data": {"input_string": [messages], "parameters": parameters or {}}}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url.rstrip("/") + "/score", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())["output"]
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("error", "")
        except (ValueError, AttributeError, OSError):
            detail = ""
        raise ServerError(f"HTTP {err.code} from {url}: {detail or err.reason}") from err
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise ServerError(f"no answer from {url}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--model", required=True, help="a saved model dir (weights + tokenizer with chat template)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", required=True, help="JSON file written with pid and port once listening")
    args = parser.parse_args(argv)
    serve(args.model, args.port, args.state, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
