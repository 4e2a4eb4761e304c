"""The error families: what the user fixes in a file or flag, and a provider call that failed."""

from __future__ import annotations

import pytest

from pytest_hybridjudge.calibration import CalibrationError
from pytest_hybridjudge.cli.common import CommandError
from pytest_hybridjudge.config import ConfigError
from pytest_hybridjudge.errors import HybridJudgeError, InputError, ProviderError
from pytest_hybridjudge.gate.baseline import BaselineError
from pytest_hybridjudge.gold import GoldError
from pytest_hybridjudge.preflight import UnwritablePath
from pytest_hybridjudge.providers import MissingCredentials, ProviderConfigError
from pytest_hybridjudge.providers.base import MalformedResponse
from pytest_hybridjudge.registry import RegistryError
from pytest_hybridjudge.rubric import RubricError
from pytest_hybridjudge.targets import TargetError
from pytest_hybridjudge.verifiers import VerifierError


@pytest.mark.parametrize(
    "error",
    [
        ConfigError,
        CalibrationError,
        GoldError,
        RubricError,
        TargetError,
        VerifierError,
        RegistryError,
        BaselineError,
        UnwritablePath,
        CommandError,
        ProviderConfigError,
        MissingCredentials,
    ],
)
def test_what_the_user_fixes_in_a_file_or_flag_is_an_input_error(error: type) -> None:
    assert issubclass(error, InputError) and issubclass(error, HybridJudgeError)


def test_a_provider_failure_is_one_family_that_keeps_its_kind_and_requests() -> None:
    from pytest_hybridjudge.providers import ProviderError as FromProviders

    assert FromProviders is ProviderError  # the old name still imports from `providers`
    assert issubclass(MalformedResponse, ProviderError) and not issubclass(
        MalformedResponse, InputError
    )
    stopped = ProviderConfigError("bad key", requests=2)
    assert (stopped.kind, stopped.requests, str(stopped)) == ("config", 2, "bad key")
    with pytest.raises(InputError):
        raise stopped


def test_a_record_the_tool_wrote_is_its_own_family() -> None:
    from pytest_hybridjudge.errors import RecordError
    from pytest_hybridjudge.runs import RunReferenceError

    # the user does not fix a run's records by hand: a separate family from their input
    assert issubclass(RecordError, HybridJudgeError) and not issubclass(RecordError, InputError)
    assert not issubclass(RecordError, ProviderError)
    assert issubclass(RunReferenceError, InputError)  # `--run`, `--judge-baseline`: a flag
