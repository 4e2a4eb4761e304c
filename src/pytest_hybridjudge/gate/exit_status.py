"""The exit status of a `pytest --judge` session: the cases' own, or the gate's. Pure.

Without a baseline pytest's status stands (1 when a case failed). With one, the gate decides:
PASS 0, REGRESSED 1, INCONCLUSIVE `INCONCLUSIVE` (6, so CI can tell it apart) unless
`on_inconclusive = "pass"`; failed cases stay listed in the report, they just do not decide
the status (the baseline fails some too). A gate that could not be computed is INCONCLUSIVE
whatever `on_inconclusive` says. pytest's own failures of the session (interrupted, internal
or usage error, no case collected) are never overridden: the gate did not see a whole run.
"""

from __future__ import annotations

from typing import Literal

import pytest

GateOutcome = Literal["PASS", "REGRESSED", "INCONCLUSIVE", "ERROR"]
INCONCLUSIVE = 6
"""Exit status of an INCONCLUSIVE gate (pytest's own codes stop at 5)."""


def session_exit_status(
    pytest_status: int, gate: GateOutcome | None, on_inconclusive: str = "block"
) -> int:
    """The status the session exits with; `gate` is None without a baseline, "ERROR" when the
    gate could not be computed."""
    if pytest_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return pytest_status
    if gate is None:
        return pytest_status
    if gate == "PASS":
        return pytest.ExitCode.OK
    if gate == "REGRESSED":
        return pytest.ExitCode.TESTS_FAILED
    if gate == "INCONCLUSIVE" and on_inconclusive == "pass":
        return pytest.ExitCode.OK
    return INCONCLUSIVE


def exit_status_line(pytest_status: int, gate: GateOutcome | None, failed: int, status: int) -> str:
    """The terminal line saying what the session exits with and why (only with a gate)."""
    why = {
        "PASS": "the gate passed",
        "REGRESSED": "the gate found a regression",
        "INCONCLUSIVE": "the gate is inconclusive",
        "ERROR": "the gate could not be decided",
    }[gate or "ERROR"]
    if pytest_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return f"exit status {status}: pytest's own, the session did not finish normally"
    if gate == "INCONCLUSIVE" and status == pytest.ExitCode.OK:
        why += ' and on_inconclusive = "pass"'
    cases = "case listed above does" if failed == 1 else "cases listed above do"
    seen = f"; the {failed} failed {cases} not decide it" if failed else ""
    return f"exit status {int(status)}: with a baseline the gate decides: {why}{seen}"
