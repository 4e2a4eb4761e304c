"""What a `pytest --judge` session is set up from, each part checked before the first call.

The command line's paths, the settings (the table with the command line's overrides), every path
the run writes, the gate's baseline, the evaluator (cache, providers, app callables, reviewers'
decisions, calibration) and the run's record. Each problem stops pytest with one line
(`pytest.UsageError`) that names what is wrong and the fix. Imports stay inside the functions:
a plain `pytest` run pays for none of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .configfile import ConfigError
from .paths import configured

if TYPE_CHECKING:
    from .config import HybridJudgeConfig
    from .evaluate import Evaluator
    from .gate.run import Baseline
    from .report import RunReport
    from .review.decisions import ReviewDesk
    from .runs import RunStore

PATH_OPTIONS = ("--judge-baseline",)  # an existing path; report and manifest are new files


def refuse_space_separated_paths(config: pytest.Config) -> None:
    """`--judge-baseline PATH` with a space: pytest picks its rootdir before any plugin adds its
    options, so it reads an existing PATH as a test path and may switch to another project (and
    run it). Refused, with the `=` form as the fix; a run id or `latest` is no path and passes."""
    import itertools
    import shlex

    params = config.invocation_params
    args = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *map(str, params.args)]
    for option, value in itertools.pairwise(args):
        if option in PATH_OPTIONS and (params.dir / value).exists():
            raise pytest.UsageError(
                f"hybridjudge: write {option}={value} (with '='): pytest reads a path after a "
                "space as a test path before plugins load, and one outside this project would "
                "switch pytest's rootdir to another project"
            )


def read_settings(
    config: pytest.Config, table: dict[str, Any], source: Path | None, rootdir: Path
) -> HybridJudgeConfig:
    """The project's `[tool.hybridjudge]` table with the command line's overrides, validated;
    a `rubrics` folder the table names must exist."""
    from .config import validate_config

    overrides = {
        "concurrency": config.getoption("judge_concurrency"),
        "cache": config.getoption("judge_cache"),
        "timeout": config.getoption("judge_timeout"),
        "strict": config.getoption("judge_strict"),
        "budget": config.getoption("judge_budget"),
    }
    try:
        settings = validate_config(table, source or rootdir / "pyproject.toml", overrides)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("judge_batch"):
        batch = settings.batch.model_copy(update={"enabled": True})
        settings = settings.model_copy(update={"batch": batch})
    if "rubrics" in table and not (rootdir / settings.rubrics).is_dir():
        raise pytest.UsageError(
            f"{source} [tool.hybridjudge]: rubrics = {settings.rubrics!r}: the folder "
            f"{rootdir / settings.rubrics} does not exist; create it or point `rubrics` at "
            "the folder that holds your rubric files"
        )
    return settings


def check_paths(
    settings: HybridJudgeConfig,
    rootdir: Path,
    store: RunStore,
    config: pytest.Config,
    records: bool,
) -> None:
    """Every path the run writes, before the first call is paid for."""
    from .preflight import UnwritablePath, check_cache, check_file, check_folder

    try:
        if settings.cache != "off":
            check_cache(configured(rootdir, settings.cache_path))
        if records:
            check_folder(store.folder, "runs_dir")
            for option in ("judge_report", "judge_manifest"):
                if value := config.getoption(option):
                    check_file(Path(value).resolve(), "--" + option.replace("_", "-"))
            if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):
                check_file(Path(step_summary), "$GITHUB_STEP_SUMMARY")  # appended at the end
    except UnwritablePath as exc:
        raise pytest.UsageError(f"hybridjudge: {exc}") from None


def gate_baseline(
    settings: HybridJudgeConfig, store: RunStore, config: pytest.Config
) -> Baseline | None:
    """The gate's baseline (`--judge-baseline` or the gate's targets), checked before any call."""
    option, gate = config.getoption("judge_baseline"), settings.gate
    if not option and gate.baseline is None and gate.candidate is None:
        return None  # no gate: a run without one need not import the gate's statistics
    from .errors import HybridJudgeError
    from .gate.run import load_baseline

    try:
        return load_baseline(option, settings, store)
    except HybridJudgeError as exc:  # the option, the run it names, or a line of its results
        raise pytest.UsageError(f"hybridjudge: {exc}") from None


def build_evaluator(
    settings: HybridJudgeConfig,
    rootdir: Path,
    desk: ReviewDesk,
    baseline: Baseline | None = None,
    share: float = 1.0,
) -> Evaluator:
    """Cache, providers, app callables, the reviewers' decisions (read here, once) and
    calibration, checked before any call."""
    from .cache import CompletionCache
    from .calibration import calibration_paths, load_calibration
    from .calls import ModelCaller
    from .config import CallableTarget
    from .errors import HybridJudgeError
    from .evaluate import Evaluator
    from .providers import split_model
    from .targets import load_callable

    if not settings.targets:
        raise pytest.UsageError(
            "hybridjudge: no target configured: set `target` in [tool.hybridjudge] "
            '(e.g. target = { model = "openai/gpt-4.1-mini" } or target = "myapp.qa:answer")'
        )
    cache = CompletionCache(configured(rootdir, settings.cache_path), settings.cache)
    try:
        caller = ModelCaller.from_config(settings, cache, rootdir)
        apps = {}
        for target in settings.targets:
            if isinstance(target, CallableTarget):
                apps[target.callable] = load_callable(target, rootdir)
            else:
                caller.provider(split_model(target.model)[0])
        for judge in settings.judges:
            caller.provider(split_model(judge.model)[0])
        decisions = desk.decisions
        calibration = load_calibration(calibration_paths(desk.path)[0])
    except HybridJudgeError as exc:
        cache.close()
        raise pytest.UsageError(f"hybridjudge: {exc}") from None
    return Evaluator(settings, caller, apps, decisions, calibration, baseline, budget_share=share)


def build_report(settings: HybridJudgeConfig, store: RunStore, config: pytest.Config) -> RunReport:
    """The run's record, at its run folder or the paths the command line names."""
    from .report import RunReport

    results, manifest = config.getoption("judge_report"), config.getoption("judge_manifest")
    run_id, paths = store.new_run(
        results=Path(results).resolve() if results else None,
        manifest=Path(manifest).resolve() if manifest else None,
    )
    return RunReport(
        run_id, paths, store=store, rates=settings.review.all_rates, budget=settings.budget
    )


def xdist_workers(config: pytest.Config) -> int:
    """How many xdist workers this controller starts (0: no xdist, or this is a worker)."""
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":
        return 0
    from xdist.workermanage import parse_tx_spec_config

    return len(parse_tx_spec_config(config))
