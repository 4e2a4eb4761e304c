"""The exit-code rule for provider failures, and how failures are classified."""

from __future__ import annotations

import httpx2 as httpx
import openai
import pytest

from pytest_hybridjudge.health import (
    OUTAGES_EXIT,
    ProviderHealth,
    health_exit_code,
    health_lines,
)
from pytest_hybridjudge.providers.failures import failure_kind

OK, FAILED, USAGE = (int(pytest.ExitCode.OK), int(pytest.ExitCode.TESTS_FAILED), 4)


@pytest.mark.parametrize(
    ("code", "health", "expected"),
    [
        (OK, ProviderHealth(100, 0), OK),
        (OK, ProviderHealth(100, 10), OK),  # at the share: still passes
        (OK, ProviderHealth(100, 11), OUTAGES_EXIT),
        (FAILED, ProviderHealth(100, 50), FAILED),  # already non-zero: kept
        (OK, ProviderHealth(100, 0, "HTTP 401"), USAGE),
        (FAILED, ProviderHealth(3, 0, "HTTP 401"), USAGE),
        (OK, ProviderHealth(0, 0), OK),
    ],
)
def test_health_exit_code(code: int, health: ProviderHealth, expected: int) -> None:
    assert health_exit_code(code, health, 0.1) == expected


def test_health_lines_say_it_without_rs() -> None:
    assert health_lines(ProviderHealth(10, 0), 0.1) == []
    [line] = health_lines(ProviderHealth(10, 1), 0.1)
    assert line.startswith("provider outages: 1 case of 10 (10.0%)") and "within" in line
    [line] = health_lines(ProviderHealth(10, 4), 0.1)
    assert f"exits {OUTAGES_EXIT}" in line and "4 cases of 10" in line


def _status_error(status: int, message: str) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    response = httpx.Response(status, request=request, json={"error": {"message": message}})
    return openai.APIStatusError(message, response=response, body={"message": message})


@pytest.mark.parametrize(
    ("status", "message", "retryable", "kind"),
    [
        (401, "Incorrect API key", False, "config"),
        (403, "not allowed", False, "config"),
        (404, "The model `x` does not exist", False, "config"),
        (400, "The model `gpt-9` does not exist or you do not have access", False, "config"),
        (400, "maximum context length is 8192 tokens", False, "rejected"),
        (400, "content policy violation", False, "rejected"),
        (429, "slow down", True, "outage"),
        (503, "overloaded", True, "outage"),
        (500, "1 validation error: Input should be 'text'", False, "rejected"),
    ],
)
def test_failure_kind(status: int, message: str, retryable: bool, kind: str) -> None:
    assert failure_kind(_status_error(status, message), retryable) == kind


def test_connection_errors_and_timeouts_are_outages() -> None:
    request = httpx.Request("POST", "http://x/v1")
    assert failure_kind(openai.APIConnectionError(request=request), True) == "outage"
    assert failure_kind(TimeoutError(), False) == "outage"
    assert failure_kind(RuntimeError("plugin bug"), False) == "rejected"
