"""The azure-ai-ml SDK's own e2e tests, run live against the emulator: per area, how many ran and passed.

Gets the tests from the installed SDK version's sdist first (`python -m tests.sdk_e2e.sdk_tests`), then runs every
selected test, known emulator gaps included (FINETUNE_SDK_E2E=all), and prints the table. Deselected tests (what
no emulator should fake) are counted with their reasons from tests/sdk_e2e/selection.py.

Usage: python bench/sdk_e2e.py [--area compute ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sdk_e2e import selection  # noqa: E402
from tests.sdk_e2e.sdk_tests import AREAS, materialize  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--area", action="append", choices=sorted(AREAS), help="only these areas")
    args = parser.parse_args()
    root = materialize()
    areas = args.area or list(AREAS)
    paths = [str(root / "tests" / AREAS[a]) for a in areas]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        reasons_file = Path(tmp) / "deselected.json"
        env = dict(os.environ, FINETUNE_SDK_E2E="all", FINETUNE_SDK_E2E_DESELECTED=str(reasons_file),
                   PYTHONPATH=str(ROOT))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "120",
                        "-W", "ignore::pytest.PytestUnknownMarkWarning", "-o", "junit_family=xunit1",
                        f"--junitxml={report}", *paths], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for case in ET.parse(report).iter("testcase"):
            area = selection.area_of(case.get("file", "") or case.get("classname", "").replace(".", "/") + ".py")
            skipped = case.find("skipped")
            outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None else
                       "passed" if skipped is None else
                       "no config" if "sdist does not ship" in (skipped.get("message") or "") else "skipped")
            counts[area][outcome] += 1
        reasons = json.loads(reasons_file.read_text()) if reasons_file.exists() else {}
    no_config = collections.Counter(selection.area_of(n) for n, r in reasons.items() if "sdist does not ship" in r)
    deselected = collections.Counter(selection.area_of(n) for n, r in reasons.items() if "sdist does not ship" not in r)
    by_reason = collections.Counter(r for r in reasons.values() if "sdist does not ship" not in r)
    columns = ("run", "passed", "failed", "skipped", "no config", "deselected")
    print(f"{'area':<18}" + "".join(f"{c:>11}" for c in columns))
    total: collections.Counter = collections.Counter()
    for area in areas + ["total"]:
        c = counts[area]
        row = total if area == "total" else {
            "run": c["passed"] + c["failed"], "passed": c["passed"], "failed": c["failed"], "skipped": c["skipped"],
            "no config": c["no config"] + no_config.get(area, 0), "deselected": deselected.get(area, 0)}
        if area != "total":
            total.update(row)
        print(f"{area:<18}" + "".join(f"{row[col]:>11}" for col in columns))
    print("deselected, by reason:")
    for reason, n in by_reason.most_common():
        print(f"  {n:>4}  {reason}")
    print(f"wall {wall:.1f} s. skipped: by the SDK's own marks; no config: opens a test config the azure-ai-ml sdist "
          "does not ship (and tests/sdk_e2e/test_configs does not provide)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
