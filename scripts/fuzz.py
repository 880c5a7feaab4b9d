"""The fuzzer for longer than CI allows: fresh random hostile inputs for every key of every command and every file
reader, for `--minutes` (default 5), with the properties of tests/fuzzing.py. Prints how many examples each
property tried and what they did (refused / accepted), and each finding with the smallest input that shows it;
exits 1 when there is one. A finding becomes a case in tests/test_hostile_input.py once fixed.

    python scripts/fuzz.py --minutes 10
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

try:
    import hypothesis  # noqa: F401 - the fuzzer's engine, installed with the test extra
except ModuleNotFoundError:
    sys.exit("scripts/fuzz.py needs Hypothesis, which the test extra installs: pip install -e \".[test]\"")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzzing import (  # noqa: E402 - tests/ put on the path first
    FILE_KINDS,
    FILE_READERS,
    check_file,
    check_new_key,
    check_override,
    command_and_key,
    override_values,
)


def properties(counts: Counter) -> dict:
    @given(command_and_key(), override_values())
    def overrides(command_key, value):
        counts["overrides " + check_override(*command_key, value)] += 1

    @given(command_and_key(), st.text(min_size=1, max_size=3))
    def new_keys(command_key, typo):
        check_new_key(command_key[0], command_key[1] + "".join(c for c in typo if c.isalnum() or c == "_") + "x")
        counts["new keys refused"] += 1

    @given(st.sampled_from(sorted(FILE_READERS)), st.sampled_from(FILE_KINDS), st.binary(min_size=1, max_size=256))
    def files(reader, kind, noise):
        with tempfile.TemporaryDirectory() as folder:
            counts["files " + check_file(reader, kind, Path(folder), noise)] += 1

    return {"overrides": overrides, "new keys": new_keys, "files": files}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--examples", type=int, default=200, help="examples per property per round")
    args = parser.parse_args()
    counts: Counter = Counter()
    findings: dict[str, str] = {}
    budget = settings(max_examples=args.examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
    end = time.monotonic() + 60 * args.minutes
    rounds = 0
    while time.monotonic() < end:
        rounds += 1
        for name, check in properties(counts).items():
            try:
                budget(check)()
            except Exception as exc:  # noqa: BLE001 - a finding: kept, reported, and the other properties go on
                notes = "\n".join(getattr(exc, "__notes__", []))
                findings.setdefault(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", notes)
    print(f"{sum(counts.values())} examples in {rounds} rounds of {args.minutes:g} min: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for finding, example in findings.items():
        print(f"FINDING {finding}\n{example}\n")
    print(f"{len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
