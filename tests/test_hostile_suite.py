"""The hostile-input suite holds together: every probe it names is a test, and the whole suite
runs in a child process with its time and address space capped."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_suite import PROBES, probe_ids

TESTS = Path(__file__).parent
MEMORY_CAP = 6 * 2**30  # address space of the child and each process it starts
TIME_CAP = 900  # seconds for the whole suite


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _pytest(*args: str, cap: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_CAP,
        preexec_fn=_cap_memory if cap else None,
        check=False,
    )


def test_every_probe_names_a_collected_test() -> None:
    collected = _pytest("--collect-only", "-q", "-m", "hostile", "-n", "0")
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    ids = {line.split("[", 1)[0] for line in collected.stdout.splitlines() if "::" in line}
    files = {test.split("::", 1)[0] for test in ids}
    missing = sorted(p for p in probe_ids() if p not in ids and p not in files)
    assert not missing, f"named in tests/hostile_suite.py but not collected: {missing}"
    assert len(PROBES) >= 18  # every item of the data-safety round has its probes


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS caps the address space on Linux")
def test_the_suite_passes_with_its_time_and_memory_capped() -> None:
    run = _pytest("-q", "-m", "hostile", "-n", "0", cap=True)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
