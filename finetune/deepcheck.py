"""What `validate` checks beyond the spec itself, still offline: the files and caches the spec refers to.

- local data (and hub data already in the HF cache): read and checked as `data prepare` would, through the data
  layer's own readers and chat checks; JSON and chat-format errors point at the data file's line;
- `model.path`: a folder with a config, weights and a tokenizer (with a chat template, or a note on how to add one);
- `model.hf`: a well-formed id, and the same folder checks on its snapshot when the HF cache holds it, else a note
  that apply needs it cached or a network.
Nothing is written and nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from finetune.errors import Diagnostic, Diagnostics, Location
from finetune.spec.models import HubSource as SpecHubSource
from finetune.spec.models import Spec
from finetune.spec.yaml_source import Path as SpecPath
from finetune.spec.yaml_source import SourceMap, dotted

# huggingface_hub's repo id rule (validate_repo_id), without importing it: [namespace/]name, 96 characters at most.
_HF_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json",
            "model.pt", "tf_model.h5", "flax_model.msgpack")
_TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tokenizer.tiktoken")
_CHAT_TEMPLATE_HINT = ("give the tokenizer one: a \"chat_template\" entry in tokenizer_config.json or a "
                       "chat_template.jinja file beside it (without one, training formats chats as ChatML)")


@dataclass
class ReferenceReport:
    diagnostics: list[Diagnostic]
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # role -> (valid rows, selected rows) checked

    @property
    def summary(self) -> str:
        """`data: train 95 rows, test 20 rows checked` (empty when no rows were read)."""
        if not self.rows:
            return ""
        parts = [f"{role} {valid}" + (f" of {selected}" if valid != selected else "") + " rows"
                 for role, (valid, selected) in self.rows.items()]
        return f"data: {', '.join(parts)} checked"


def check_references(spec: Spec, source: SourceMap, base_dir: Path, *, broken: Iterable[str] = ()
                     ) -> ReferenceReport:
    """Diagnostics for the data and model the spec refers to; sections in `broken` (refused by the schema) are
    skipped."""
    checker = _References(spec, source, Path(base_dir), Diagnostics())
    skipped = set(broken)
    if "data" not in skipped:
        checker.data()
    if "model" not in skipped:
        checker.model()
    return ReferenceReport(checker.diags.items, checker.rows)


class _References:
    def __init__(self, spec: Spec, source: SourceMap, base_dir: Path, diags: Diagnostics) -> None:
        self.spec, self.source, self.base_dir, self.diags = spec, source, base_dir, diags
        self.rows: dict[str, tuple[int, int]] = {}

    def report(self, severity: str, path: SpecPath, message: str, hint: str = "") -> None:
        getattr(self.diags, severity)(message, path=dotted(path), hint=hint, location=self.source.locate(path))

    # -- data ---------------------------------------------------------------------------------------------------------
    def data(self) -> None:
        source = self.spec.data.source
        if isinstance(source, SpecHubSource) and not (_hf_cache() / ("datasets--" + source.hf.replace("/", "--"))
                                                      ).is_dir():
            return  # not fetched yet: plan or apply reads it (and validate need not import the data layer)
        from finetune.data import DataError, SourceUnavailableError
        from finetune.data.inspect import inspect
        from finetune.dataprep import request_for

        try:
            request = request_for(self.spec, self.base_dir)
        except DataError as exc:
            self.report("error", ("data",), exc.message, exc.hint or "")
            return
        where = ("data", "source")
        try:
            result = inspect(request)
        except SourceUnavailableError:  # a hub dataset only partly in the cache: plan or apply fetches the rest
            return
        self.rows = {role: (check.valid_rows, check.selected_rows) for role, check in result.roles.items()}
        for exc in result.errors:
            self._data_error(exc, where)
        policy = self.spec.data.invalid_rows
        for check in result.roles.values():
            if not check.invalid_rows:
                continue
            counted = f"{check.invalid_rows} of {check.selected_rows} {check.role} rows (split {check.source_split})"
            if policy == "drop":
                self.report("warning", ("data", "invalid_rows"), f"{counted} are not valid chat and will be "
                            "dropped")
                continue
            for bad in check.bad_rows:
                self.diags.error(f"{check.role} row is not valid chat: {'; '.join(bad.reasons)}",
                                 location=Location(bad.path, bad.line), path="data.source",
                                 hint="fix or remove that line, or set data.invalid_rows: drop")
            if check.invalid_rows > len(check.bad_rows):
                self.report("error", ("data", "source"), f"{counted} are not valid chat ({len(check.bad_rows)} "
                            "shown)", "fix the data, or set data.invalid_rows: drop")
        if not result.errors and "train" in result.roles:
            train = result.roles["train"]
            if train.valid_rows == 0 and (policy == "drop" or not train.invalid_rows):
                self.report("error", ("data", "split_percentage"), f"no train rows left from source split "
                            f"{train.source_split!r} ({train.source_rows} rows)", "raise the percentage")

    def _data_error(self, exc, where: SpecPath) -> None:
        if exc.path is not None and exc.line is not None:  # a line of a data file
            self.diags.error(exc.message, path=dotted(where), hint=exc.hint or "",
                             location=Location(exc.path, exc.line))
        else:
            message = f"{exc.path}: {exc.message}" if exc.path else exc.message
            self.report("error", where, message, exc.hint or "")

    # -- model --------------------------------------------------------------------------------------------------------
    def model(self) -> None:
        model = self.spec.model
        if model.path is not None:
            folder = (self.base_dir / model.path).resolve()
            self._folder(folder, ("model", "path"), f"model.path {model.path}")
        elif model.hf is not None:
            self._hf(model.hf)

    def _hf(self, repo_id: str) -> None:
        path = ("model", "hf")
        if len(repo_id) > 96 or not _HF_ID.match(repo_id) or "--" in repo_id or ".." in repo_id or \
                re.search(r"(^|/)[-.]|[-.]($|/)", repo_id):
            self.report("error", path, f"'{repo_id}' is not a valid Hugging Face model id",
                        "use 'owner/name' (letters, digits, '-', '_', '.'), e.g. Qwen/Qwen2.5-0.5B-Instruct")
            return
        snapshot = cached_snapshot(_hf_cache(), repo_id, getattr(self.spec.model, "revision", None))
        if snapshot is None:
            self.report("warning", path, f"hf model {repo_id} is not in the HF cache ({_hf_cache()}); apply "
                        "downloads it, so it needs a network (or run `huggingface-cli download "
                        f"{repo_id}` once)")
            return
        self._folder(snapshot, path, f"cached {repo_id}")

    def _folder(self, folder: Path, path: SpecPath, what: str) -> None:
        if not folder.exists():
            self.report("error", path, f"{what} does not exist (relative to the spec file)",
                        "fix the path, or use `hf:` or `tiny:`")
            return
        if not folder.is_dir():
            self.report("error", path, f"{what} is a file", "give the folder that holds config.json, the weights "
                        "and the tokenizer")
            return
        names = {p.name for p in folder.iterdir()}
        config = _json_problem(folder / "config.json") if "config.json" in names else "no config.json"
        config = f"config.json {config}" if config and config != "no config.json" else config
        if config:
            self.report("error", path, f"{what}: {config}", "a model folder as `save_pretrained` writes it holds "
                        "config.json")
        if not any(next(folder.glob(pattern), None) for pattern in _WEIGHTS):
            self.report("error", path, f"{what}: no weights (*.safetensors or pytorch_model*.bin)",
                        "save the model with `save_pretrained` into this folder")
        if not names.intersection(_TOKENIZER):
            self.report("error", path, f"{what}: no tokenizer (tokenizer.json, tokenizer.model or vocab files)",
                        "save the tokenizer with `tokenizer.save_pretrained` into this folder")
            return
        if "chat_template.jinja" in names or "chat_template.json" in names:
            return
        config_file = folder / "tokenizer_config.json"
        problem = _json_problem(config_file) if config_file.exists() else None
        if problem:
            self.report("error", path, f"{what}: tokenizer_config.json {problem}")
        elif not config_file.exists() or not _has_chat_template(config_file):
            self.report("warning", path, f"{what}: the tokenizer has no chat template", _CHAT_TEMPLATE_HINT)


def _json_problem(file: Path) -> str | None:
    try:
        json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot be read ({exc})"
    except json.JSONDecodeError as exc:
        return f"is not valid JSON (line {exc.lineno}: {exc.msg})"
    return None


def _has_chat_template(config_file: Path) -> bool:
    data = json.loads(config_file.read_text(encoding="utf-8"))
    return isinstance(data, dict) and bool(data.get("chat_template"))


def _hf_cache() -> Path:
    """finetune.data.hub.hub_cache()'s rule (a test holds them equal), here so that validating a spec whose data is
    not local does not import the data layer: start-up time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface" / "hub"


def cached_snapshot(cache: Path, repo_id: str, revision: str | None) -> Path | None:
    """The snapshot folder of a model in the huggingface_hub cache layout, or None when it is not there."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    ref = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        commit = ref
    else:
        try:
            commit = (repo / "refs" / ref).read_text().strip()
        except OSError:
            return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None
