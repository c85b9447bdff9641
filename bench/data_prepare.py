"""Benchmark: `finetune data prepare` vs the notebook's download-dataset.py way, side by side in one run.

Generates an ultrachat_200k-like dataset into a temp folder (train_sft + test_sft, hub-style Parquet shards
`data/<split>-0000i-of-0000n.parquet` and the same rows as JSONL), then runs each variant in its own subprocess and
reads that child's peak RSS from os.wait4. The notebook's way is `load_dataset(..., split="<split>[0%:<pc>%]")`
+ `Dataset.to_json` for every split, with a fresh `datasets` cache (as on a first run). Times are the work inside
the child (imports excluded for both sides); wall times including interpreter start are shown too.

    python bench/data_prepare.py [--rows 200000] [--formats parquet,jsonl] [--keep DIR] [--repeat N]

On a busy (shared) machine, --repeat N runs the variants N times, interleaved, and reports each one's median
(time and peak RSS); the ratios are of medians. After each run, finetune's output is checked to hold the
same rows per split as the notebook's (count, first and last row), so both sides did the same work.

Goals at 5%: time <= 0.35x and peak RSS <= 0.3x of the notebook's; at 100%: time <= 0.8x; cached re-run <= 0.05x.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train_sft", "test_sft")

# ---------------------------------------------------------------- data generation


def _corpus(rng: random.Random, size: int = 4_000_000) -> str:
    words = ["".join(rng.choice("etaoinshrdlucmfwypvbgkqjxz") for _ in range(rng.randint(1, 9))) for _ in range(5000)]
    out, n = [], 0
    while n < size:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def _rows(n: int, rng: random.Random, corpus: str):
    """ultrachat-like rows: prompt, prompt_id (sha256 hex), 2-14 turns, user ~350 / assistant ~1200 chars."""
    limit = len(corpus) - 5000
    for _ in range(n):
        pairs = min(7, max(1, int(rng.expovariate(1 / 3.2)) + 1))
        messages = []
        for _ in range(pairs):
            for role, mean in (("user", 350), ("assistant", 1200)):
                length = max(20, min(4500, int(rng.gauss(mean, mean / 2))))
                start = rng.randrange(limit)
                messages.append({"content": corpus[start : start + length], "role": role})
        prompt = messages[0]["content"]
        yield {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(), "messages": messages}


def generate(root: Path, rows: int, seed: int = 7) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    corpus = _corpus(rng)
    pq_dir, jl_dir = root / "parquet", root / "jsonl"
    (pq_dir / "data").mkdir(parents=True)
    jl_dir.mkdir(parents=True)
    for split, n in (("train_sft", rows), ("test_sft", max(1, rows // 9))):
        shards = 3 if split == "train_sft" else 1
        per = -(-n // shards)
        with open(jl_dir / f"{split}.jsonl", "w", encoding="utf-8") as jl:
            for s in range(shards):
                batch = list(_rows(min(per, n - s * per), rng, corpus))
                jl.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in batch)
                table = pa.Table.from_pylist(batch)
                # The hub's shards have row groups of ~1000 rows too.
                pq.write_table(table, pq_dir / "data" / f"{split}-{s:05d}-of-{shards:05d}.parquet", row_group_size=1000)
                del batch, table


# ---------------------------------------------------------------- the variants (run in a child process)


def child_notebook(src: str, fmt: str, pc: str, out: str) -> float:
    from datasets import load_dataset

    t = time.perf_counter()
    files = {s: sorted(str(p) for p in Path(src).rglob(f"{s}*.{fmt}")) for s in SPLITS}
    for split in SPLITS:  # what download-dataset.py does for every split
        ds = load_dataset("parquet" if fmt == "parquet" else "json", data_files=files, split=f"{split}[0%:{pc}%]")
        ds.to_json(os.path.join(out, f"{split}.jsonl"))
    return time.perf_counter() - t


def child_finetune(src: str, pc: str, out: str, cache: str) -> float:
    sys.path.insert(0, str(REPO))
    import pyarrow.parquet  # noqa: F401 - imports are outside the timing on both sides (datasets imports it too)

    from finetune.data import LocalSource, PrepareRequest, prepare

    t = time.perf_counter()
    request = PrepareRequest(LocalSource(path=src), {"train": "train_sft", "test": "test_sft"}, percentage=float(pc))
    prepare(request, Path(out), Path(cache))
    return time.perf_counter() - t


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(work seconds reported by the child, wall seconds, peak RSS MiB) of one variant."""
    # Flush what the previous variant wrote (the notebook leaves ~2 GB of dirty pages), outside the timing: else the
    # kernel's writeback of it throttles and slows whichever variant runs next.
    os.sync()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"variant {args} failed")
    return float(out.strip().splitlines()[-1]), wall, usage.ru_maxrss / 1024


def median(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Median work time, wall time and peak RSS over repeated runs of one variant (each taken on its own)."""
    return tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[return-value]


def outline(folder: Path, names: dict[str, str]) -> dict[str, tuple[int, object, object]]:
    """split -> (rows, first row, last row) of `folder/<names[split]>.jsonl`, to tell that two outputs agree."""
    found = {}
    for split, name in names.items():
        rows, first, last = 0, b"", b""
        with open(folder / f"{name}.jsonl", "rb") as f:  # streamed: a big driver would inflate the children's peaks
            for line in f:
                if line.strip():
                    rows, first, last = rows + 1, first or line, line
        found[split] = (rows, json.loads(first), json.loads(last))
    return found


# ---------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--formats", default="parquet,jsonl")
    ap.add_argument("--keep", help="generate into / reuse this folder instead of a temp one")
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved; the median is reported")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "generate":
            generate(Path(rest[0]), int(rest[1]))
        else:
            print(child_notebook(*rest) if kind == "notebook" else child_finetune(*rest))
        return

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    try:
        t = time.perf_counter()
        sources = {"parquet": root / "parquet", "jsonl": root / "jsonl"}
        if not (root / "jsonl" / "train_sft.jsonl").exists():
            # In a child too: ru_maxrss survives exec, so a big driver would inflate every variant's peak.
            subprocess.run([sys.executable, __file__, "--child", "generate", str(root), str(a.rows)], check=True)
        size = {k: sum(p.stat().st_size for p in v.rglob("*") if p.is_file()) / 2**20 for k, v in sources.items()}
        print(
            f"dataset: {a.rows:,} train_sft rows + test_sft; parquet {size['parquet']:.0f} MiB, "
            f"jsonl {size['jsonl']:.0f} MiB (ready in {time.perf_counter() - t:.1f}s)\n"
        )
        env = {
            **os.environ,
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        }
        header = f"{'format':<8} {'pc':>4} {'variant':<18} {'work s':>8} {'wall s':>8} {'peak MiB':>9}"
        print(f"medians of {a.repeat} run(s) each\n" + header + "\n" + "-" * len(header))
        verdicts = []
        for fmt in a.formats.split(","):
            src = str(sources[fmt])
            for pc in ("5", "100"):
                runs: tuple[list, list, list] = ([], [], [])
                for _ in range(a.repeat):
                    run = root / f"run-{fmt}-{pc}"
                    shutil.rmtree(run, ignore_errors=True)
                    for d in ("nb-out", "nb-hf", "ft-out", "ft-cache"):
                        (run / d).mkdir(parents=True)
                    nb_env = {**env, "HF_HOME": str(run / "nb-hf")}  # a fresh `datasets` cache, as on a first run
                    runs[0].append(run_child(["notebook", src, fmt, pc, str(run / "nb-out")], nb_env))
                    ft_args = ["finetune", src, pc, str(run / "ft-out"), str(run / "ft-cache")]
                    runs[1].append(run_child(ft_args, env))
                    runs[2].append(run_child(ft_args, env))
                    nb_rows = outline(run / "nb-out", {s: s for s in SPLITS})
                    if nb_rows != outline(run / "ft-out", {"train_sft": "train", "test_sft": "test"}):
                        raise SystemExit(f"{fmt} {pc}%: finetune's output is not the notebook's rows")
                    shutil.rmtree(run, ignore_errors=True)
                nb, ft, again = (median(r) for r in runs)
                for name, (work, wall, rss) in (("notebook", nb), ("finetune", ft), ("finetune (cached)", again)):
                    print(f"{fmt:<8} {pc + '%':>4} {name:<18} {work:>8.2f} {wall:>8.2f} {rss:>9.0f}")
                time_ratio, rss_ratio, cached_ratio = ft[0] / nb[0], ft[2] / nb[2], again[0] / ft[0]
                if pc == "5":
                    verdicts.append((f"{fmt} 5%: time", time_ratio, 0.35))
                    verdicts.append((f"{fmt} 5%: peak RSS", rss_ratio, 0.3))
                else:
                    verdicts.append((f"{fmt} 100%: time", time_ratio, 0.8))
                    verdicts.append((f"{fmt} 100%: peak RSS (no goal)", rss_ratio, None))
                verdicts.append((f"{fmt} {pc}%: cached re-run vs first", cached_ratio, 0.05))
        print("\nratios (finetune / notebook unless noted)")
        for name, ratio, goal in verdicts:
            verdict = "" if goal is None else ("  ok" if ratio <= goal else f"  MISSED (goal <= {goal}x)")
            print(f"  {name:<42} {ratio:6.3f}x{verdict}")
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
