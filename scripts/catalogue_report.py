#!/usr/bin/env python3
"""Run `host check --json` over a folder of capability files; print the pass rate and top failure reasons.

    .venv/bin/python scripts/catalogue_report.py ../shared/naftiko-catalogue [--json-out report.json]

"Valid alpha2 YAML" files are the denominator: files that parse as YAML and say
`naftiko: 1.0.0-alpha2` (or `1.0.0-alpha3`, whose schema differs only in that constant). A file
passes when its status is OK or WARN (it is served).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

BATCH = 200


SUPPORTED = {"1.0.0-alpha2", "1.0.0-alpha3"}


def is_alpha2(path: Path) -> bool:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return False
    return isinstance(document, dict) and str(document.get("naftiko")) in SUPPORTED


def check(files: list[Path]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for start in range(0, len(files), BATCH):
        batch = [str(f) for f in files[start : start + BATCH]]
        done = subprocess.run(
            [sys.executable, "-m", "host", "check", "--json", *batch],
            capture_output=True,
            text=True,
            timeout=600,
        )
        results.extend(json.loads(done.stdout))
    return results


def reason(message: str) -> str:
    """Group similar messages: strip quoted names, numbers and key paths."""
    text = re.sub(r"^[\w.\[\]-]+: ", "", message)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"\d+", "N", text)[:120]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json-out", type=Path, help="write every file's report here")
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.yaml")) + sorted(args.folder.glob("*.yml"))
    valid = [f for f in files if is_alpha2(f)]
    results = check(valid)
    served = [r for r in results if r["status"] != "ERROR"]
    statuses = collections.Counter(str(r["status"]) for r in results)
    errors = collections.Counter(reason(str(e)) for r in results for e in r["errors"])  # type: ignore[attr-defined]
    warnings = collections.Counter(reason(str(w)) for r in results for w in r["warnings"])  # type: ignore[attr-defined]
    rate = 100.0 * len(served) / len(valid) if valid else 0.0
    print(
        f"files: {len(files)}; valid alpha2 YAML: {len(valid)}; "
        f"served (OK or WARN): {len(served)} ({rate:.1f}%)"
    )
    print("status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print("top reasons a file is not served:")
    for text, count in errors.most_common(10):
        print(f"  {count:5}  {text}")
    print("top warnings:")
    for text, count in warnings.most_common(10):
        print(f"  {count:5}  {text}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
