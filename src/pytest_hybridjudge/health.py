"""Whether the providers let a run mean anything: the exit-code rule for provider failures.

A configuration error (a wrong key, model or URL: 401/403/404) stops the run before it pays for
more and exits with pytest's usage-error code; provider outages (timeouts, connection errors,
429, 5xx after retries) above `max_outage_share` of the cases make a run that would have exited
0 exit `OUTAGES_EXIT` instead, and the summary says so without `-rs`. The rule is applied after
the cases' and the gate's own exit code, and only ever turns a 0 into non-zero (or any code into
the usage error), never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

OUTAGES_EXIT = 7  # too many outages: the run says too little to pass, and retrying may help


@dataclass(frozen=True)
class ProviderHealth:
    """What a run's records say about its providers."""

    cases: int
    outages: int
    config_error: str | None = None

    @property
    def outage_share(self) -> float:
        """Outages among the run's cases."""
        return self.outages / self.cases if self.cases else 0.0


def health_exit_code(exit_code: int, health: ProviderHealth, max_outage_share: float) -> int:
    """The session's exit code once provider failures are taken into account."""
    if health.config_error is not None:
        return int(pytest.ExitCode.USAGE_ERROR)
    if exit_code == pytest.ExitCode.OK and health.outage_share > max_outage_share:
        return OUTAGES_EXIT
    return exit_code


def health_lines(health: ProviderHealth, max_outage_share: float) -> list[str]:
    """What the terminal summary says about outages and a configuration error (none if fine)."""
    lines = []
    if health.config_error is not None:
        lines.append(
            f"stopped: provider configuration error, nothing more was sent (exit code "
            f"{int(pytest.ExitCode.USAGE_ERROR)}): {health.config_error}"
        )
    if health.outages:
        cases = "case" if health.outages == 1 else "cases"
        over = health.outage_share > max_outage_share
        lines.append(
            f"provider outages: {health.outages} {cases} of {health.cases} "
            f"({health.outage_share:.1%}), not graded"
            + (
                f"; more than max_outage_share = {max_outage_share:g}: the run cannot pass (a "
                f"run that would exit 0 exits {OUTAGES_EXIT}); try again later"
                if over
                else f"; within max_outage_share = {max_outage_share:g}"
            )
        )
    return lines
