"""Training and evaluation metrics of a pipeline job, read the way Azure ML documents it: through MLflow.

azure-ai-ml has no metrics API; Azure ML's guidance is MLflow on the workspace's tracking URI
(https://learn.microsoft.com/azure/machine-learning/how-to-track-experiments-mlflow). What is read:
- the tracking URI from the workspace (``Workspace.mlflow_tracking_uri``, i.e. ``properties.mlFlowTrackingUri`` as
  the service returns it), never built by hand: private-link workspaces differ. Its ``azureml://`` scheme is the
  ``https://`` host of the MLflow REST API (azureml-examples ``using_mlflow_rest_api.ipynb``: "replace the protocol
  from azureml to https"; MLflow's routes live under ``/api/2.0/mlflow`` there);
- the pipeline job's child runs: a search in the job's experiment for ``tags.mlflow.rootRunId = '<job name>'``
  (Azure ML tags every run below a pipeline job so, nested pipeline components included). ``run.data.metrics`` is
  the latest value of each key, which is all apply's progress needs: one search per look. Only
  ``mlflow.parentRunId`` is documented ("Get child (nested) runs"), so when that search finds no step runs (nothing
  below the pipeline's nodes), the runs are walked down by ``tags.mlflow.parentRunId = '<run id>'``, level by
  level (at most ``WALK_DEPTH`` levels below the job; one level's searches run together);
- curves with ``get_metric_history`` (``status`` only), for the keys the runs actually logged (discovered, not a
  fixed list).

Why MLflow's own ``RestStore`` and not the azureml-mlflow plugin: the plugin brings its own authentication and
dependencies (azure-storage, msrest, jsonpickle) to register the ``azureml://`` scheme; the store needs only a host
and a bearer token, and the token comes from the same azure-identity credential the client factory gives the
SDK (ARM scope, as the REST notebook uses), so one sign-in serves both. The store is called per request for its
credentials, so an expiring token is renewed by the credential's own cache.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from finetune.errors import FinetuneError

TRAINING_LOSS = "loss"  # the Hugging Face Trainer's running training loss (the fine-tune step is a Trainer)
FINAL_LOSS = "train_loss"
EPOCH = "epoch"
EVAL_PREFIX = "eval_"
DONE = {"FINISHED", "FAILED", "KILLED"}
WALK_DEPTH = 3  # levels below the job walked by parentRunId: nodes, a pipeline component's steps, one more
WALK_THREADS = 8  # at most this many searches of one level at once


class MetricsUnavailable(Exception):
    """Metrics cannot be read (permissions, an old workspace, no tracking URI): one line saying why."""


@dataclass
class StepRun:
    """One child run of the pipeline job (a node or a step of the pipeline component) and what it logged."""

    name: str
    run_id: str
    status: str
    metrics: dict[str, float]  # latest value per key
    steps: dict[str, int]  # the step each latest value was logged at
    start_ms: int | None = None  # the run's start and end (ms since the epoch; end None while it runs)
    end_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "run_id": self.run_id, "status": self.status, "metrics": self.metrics}


@dataclass
class JobMetrics:
    """What a job's runs logged so far; `history` (step, value) per key of the training run when it was read."""

    job: str
    runs: list[StepRun]
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def seconds(self) -> float | None:
        """From the first step's start to the last one's end, once every step has ended (None before)."""
        if not self.runs or any(r.start_ms is None or r.end_ms is None for r in self.runs):
            return None
        return (max(r.end_ms for r in self.runs) - min(r.start_ms for r in self.runs)) / 1000

    @property
    def training(self) -> StepRun | None:
        """The run that logs the training loss (the fine-tune step), found by what it logged, not by its name."""
        return next((r for r in self.runs if TRAINING_LOSS in r.metrics or FINAL_LOSS in r.metrics), None)

    def latest(self) -> dict[str, Any]:
        """Step, epoch and loss as last logged by the training run (empty before it logged anything)."""
        run = self.training
        if run is None:
            return {}
        out: dict[str, Any] = {}
        key = TRAINING_LOSS if TRAINING_LOSS in run.metrics else FINAL_LOSS
        out["step"] = run.steps.get(key)
        if EPOCH in run.metrics:
            out["epoch"] = run.metrics[EPOCH]
        out["loss"] = run.metrics[key]
        return {k: v for k, v in out.items() if v is not None}

    def evaluation(self) -> dict[str, dict[str, float]]:
        """Scores by run: the training run's `eval_*` metrics and everything any other step logged (e.g. an
        evaluation step's scores)."""
        scores: dict[str, dict[str, float]] = {}
        training = self.training
        for run in self.runs:
            if run is training:
                found = {k: v for k, v in run.metrics.items() if k.startswith(EVAL_PREFIX)}
            else:
                found = dict(run.metrics)
            if found:
                scores[run.name] = found
        return scores

    def progress_text(self) -> str:
        """`step 40, epoch 1, loss 1.234` for apply's progress line ("" before anything was logged)."""
        latest = self.latest()
        parts = []
        if "step" in latest:
            parts.append(f"step {latest['step']}")
        if "epoch" in latest:
            parts.append(f"epoch {latest['epoch']:g}")
        if "loss" in latest:
            parts.append(f"loss {latest['loss']:.4g}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        training = self.training
        out: dict[str, Any] = {"source": "mlflow", "job": self.job, "latest": self.latest(),
                               "final": dict(training.metrics) if training else {},
                               "evaluation": self.evaluation(), "runs": [r.to_dict() for r in self.runs]}
        if self.history:
            out["history"] = {k: [[s, v] for s, v in pts] for k, pts in self.history.items()}
        return out


def https_form(tracking_uri: str) -> str:
    """The REST host of an ``azureml://`` tracking URI (its https form; the path is kept as the service gave it)."""
    if tracking_uri.startswith("azureml://"):
        return "https://" + tracking_uri[len("azureml://"):].rstrip("/?")
    return tracking_uri.rstrip("/?")


def arm_scope() -> str:
    """The Azure Resource Manager scope of the SDK's cloud (public Azure: https://management.azure.com/.default)."""
    try:
        from azure.ai.ml._azure_environments import _get_base_url_from_metadata

        return _get_base_url_from_metadata().rstrip("/") + "/.default"
    except Exception:  # noqa: BLE001 - a future SDK without the helper: public Azure
        return "https://management.azure.com/.default"


def one_line(exc: BaseException) -> str:
    """An MLflow/HTTP error as a short sentence (no response bodies, no tokens)."""
    from mlflow.exceptions import RestException

    if isinstance(exc, RestException):
        body = exc.json if isinstance(exc.json, dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = body.get("error_code") or inner.get("code") or ""
        message = body.get("message") or inner.get("message") or str(exc)
        text = f"{code}: {message}" if code else str(message)
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


class MlflowReader:
    """Reads one workspace's MLflow tracking server with the workspace's credential. Thread-safe."""

    def __init__(self, tracking_uri: str, credential: Any) -> None:
        import logging

        from mlflow.store.tracking.rest_store import RestStore

        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its retry chatter is not the user's business
        self.host = https_form(tracking_uri)
        self.credential = credential
        self.scope = arm_scope()
        self.store = RestStore(self._host_creds)
        self._experiments: dict[str, str] = {}
        self._lock = threading.Lock()

    def _host_creds(self) -> Any:
        from mlflow.utils.rest_utils import MlflowHostCreds

        return MlflowHostCreds(self.host, token=self.credential.get_token(self.scope).token)

    def experiment_id(self, name: str) -> str:
        with self._lock:
            found = self._experiments.get(name)
        if found is None:
            experiment = self.store.get_experiment_by_name(name)
            if experiment is None:
                raise MetricsUnavailable(f"the workspace's MLflow tracking has no experiment {name!r}")
            found = experiment.experiment_id
            with self._lock:
                self._experiments[name] = found
        return found

    def runs(self, job: str, experiment: str) -> JobMetrics:
        """Every run below the pipeline job, with the latest value of each metric (one search, paged; the
        parentRunId walk when it finds no step runs)."""
        experiment_id = self.experiment_id(experiment)
        found = [r for r in self._search(experiment_id, "mlflow.rootRunId", job) if r.info.run_id != job]
        if all(r.data.tags.get("mlflow.parentRunId") == job for r in found):  # no step runs: walk down
            found = self._walk(experiment_id, job, found)
        runs = []
        for run in sorted(found, key=lambda r: (r.info.start_time or 0, r.info.run_id)):
            latest = {k: float(v) for k, v in run.data.metrics.items() if math.isfinite(float(v))}
            steps = {m.key: int(m.step) for m in run.data.to_proto().metrics}
            name = run.info.run_name or run.data.tags.get("mlflow.runName") or run.info.run_id
            runs.append(StepRun(name, run.info.run_id, str(run.info.status), latest, steps, run.info.start_time,
                                run.info.end_time))
        return JobMetrics(job, runs)

    def _search(self, experiment_id: str, tag: str, value: str) -> list[Any]:
        """The runs whose tag `tag` is `value` (every page)."""
        from mlflow.entities import ViewType

        found, token = [], None
        escaped = value.replace("'", "\\'")
        while True:
            page = self.store.search_runs([experiment_id], f"tags.{tag} = '{escaped}'", ViewType.ACTIVE_ONLY,
                                          page_token=token)
            found += list(page)
            token = page.token
            if not token:
                return found

    def _walk(self, experiment_id: str, job: str, nodes: list[Any]) -> list[Any]:
        """The runs below `job` by ``mlflow.parentRunId``, one level at a time (starting below `nodes`, the job's
        children when the rootRunId search found them). One level's searches run together, in daemon threads like
        every read here (`in_background`), so a retrying one never holds the process."""
        level = nodes or self._search(experiment_id, "mlflow.parentRunId", job)
        found = list(level)
        for _ in range(WALK_DEPTH - 1):
            parents = [r.info.run_id for r in level]
            level = []
            for start in range(0, len(parents), WALK_THREADS):
                searches = [in_background(self._search, experiment_id, "mlflow.parentRunId", parent)
                            for parent in parents[start:start + WALK_THREADS]]
                level += [run for search in searches for run in search.result()]
            if not level:
                break
            found += level
        return found

    def with_history(self, job: str, experiment: str) -> JobMetrics:
        """The runs, and the training run's curves (every key it logged more than once, loss first)."""
        metrics = self.runs(job, experiment)
        training = metrics.training
        if training is not None:
            for key in sorted(training.metrics, key=lambda k: (k != TRAINING_LOSS, k)):
                history = self.store.get_metric_history(training.run_id, key)
                points = sorted((int(m.step), float(m.value)) for m in history if math.isfinite(float(m.value)))
                if len(points) > 1 or key == TRAINING_LOSS:
                    metrics.history[key] = points
        return metrics


class WorkspaceMetrics:
    """The MLflow metrics of one workspace's jobs. The reader is made on first use: one workspace read for the
    tracking URI, then reused. Every failure becomes MetricsUnavailable with one line."""

    def __init__(self, tracking_uri: Callable[[], str | None], credential: Callable[[], Any]) -> None:
        self._tracking_uri = tracking_uri
        self._credential = credential
        self._reader: MlflowReader | None = None
        self._lock = threading.Lock()

    def reader(self) -> MlflowReader:
        with self._lock:
            if self._reader is None:
                uri = self._tracking_uri()
                if not uri:
                    raise MetricsUnavailable("the workspace reports no MLflow tracking URI")
                self._reader = MlflowReader(uri, self._credential())
            return self._reader

    def read(self, job: str, experiment: str, *, history: bool = False) -> JobMetrics:
        try:
            reader = self.reader()
            return reader.with_history(job, experiment) if history else reader.runs(job, experiment)
        except MetricsUnavailable:
            raise
        except FinetuneError as exc:  # reading the workspace failed
            raise MetricsUnavailable(exc.diagnostics[0].message) from exc
        except Exception as exc:  # noqa: BLE001 - HTTP, auth and MLflow errors alike: metrics are optional
            raise MetricsUnavailable(one_line(exc)) from exc


def in_background(fn: Callable[..., Any], *args: Any) -> Future:
    """Run `fn` in a daemon thread: a slow or retrying MLflow read never keeps apply's process from exiting."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(exc)

    threading.Thread(target=work, name="mlflow-metrics", daemon=True).start()
    return future


class MetricsPoller:
    """Apply's view of a running job's metrics, off the critical path: reads run in the background while apply waits
    on the job; `poll()` never blocks, starts at most one read per call (so no more often than the job is polled) and
    never two at once. After a failure it stops reading and keeps the one-line reason in `error`.

    Made when apply starts waiting on the job, it prepares the reader at once (mlflow's import takes seconds, the
    workspace read one request), so the first read while the job runs does not wait on them."""

    def __init__(self, source: WorkspaceMetrics, job: str, experiment: str) -> None:
        self.source, self.job, self.experiment = source, job, experiment
        self.latest: JobMetrics | None = None
        self.error: str | None = None
        self._future: Future | None = None
        self._warming = in_background(source.reader)

    def _collect(self) -> None:
        future, self._future = self._future, None
        if future is None:
            return
        try:
            self.latest = future.result()
        except MetricsUnavailable as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken read: metrics are optional
            self.error = one_line(exc)

    def poll(self) -> JobMetrics | None:
        if self._future is not None and self._future.done():
            self._collect()
        if self._future is None and self.error is None:
            self._future = in_background(self.source.read, self.job, self.experiment)
        return self.latest

    def finish(self, timeout: float) -> JobMetrics | None:
        """The last values once the job has ended: one more read (or the one in flight), waited on for at most
        `timeout` seconds, and only when the reader is ready (a job that ended before it was is not held up)."""
        if not self._warming.done():
            return self.latest
        if self._future is None and self.error is None:
            self.poll()
        if self._future is not None:
            try:
                self._future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - timeout or failure: _collect keeps what it can
                pass
            if self._future.done():
                self._collect()
        return self.latest
