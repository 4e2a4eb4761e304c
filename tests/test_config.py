"""Unit tests for `config.py`: loading `[tool.hybridjudge]`, validation, shorthand, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_hybridjudge.config import (
    CallableTarget,
    ConfigError,
    HybridJudgeConfig,
    ModelSpec,
    TargetSpec,
    load_config,
)


def write_pyproject(root: Path, body: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text("[project]\nname = 'demo'\n\n[tool.hybridjudge]\n" + body + "\n")
    return path


def test_full_table_from_pyproject(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        """
gold = ["gold", "extra/cases.yaml"]
rubrics = "my-rubrics"
target = { model = "openai/gpt-4.1-mini", prompt = "Q: {{ input }}" }
judges = ["openai/gpt-4.1", { model = "anthropic/claude-sonnet-4-5", temperature = 0.5 }]
aggregation = "mean"
concurrency = 8

[tool.hybridjudge.escalation]
min_confidence = 0.7
on_split = false
""",
    )
    config = load_config(tmp_path)
    assert config.gold == ["gold", "extra/cases.yaml"]
    assert config.rubrics == "my-rubrics"
    assert config.target == TargetSpec(model="openai/gpt-4.1-mini", prompt="Q: {{ input }}")
    assert [j.model for j in config.judges] == ["openai/gpt-4.1", "anthropic/claude-sonnet-4-5"]
    assert config.judges[1].temperature == 0.5
    assert config.aggregation == "mean"
    assert config.concurrency == 8
    assert config.escalation.min_confidence == 0.7
    assert config.escalation.on_split is False
    assert config.escalation.on_error is True  # untouched default


def test_no_config_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == HybridJudgeConfig()
    assert config.gold == ["gold"]
    assert config.rubrics == "rubrics"
    assert config.targets == []
    assert config.judges == []
    assert config.aggregation == "median"
    assert config.concurrency == 32
    assert config.cache == "use"
    assert config.escalation.min_confidence == 0.0


def test_pyproject_without_table_gives_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.ruff]\nline-length = 1\n"
    )
    assert load_config(tmp_path) == HybridJudgeConfig()


def test_hybridjudge_toml_with_tool_table(tmp_path: Path) -> None:
    (tmp_path / "hybridjudge.toml").write_text('[tool.hybridjudge]\nrubrics = "r2"\nretries = 1\n')
    config = load_config(tmp_path)
    assert config.rubrics == "r2"
    assert config.retries == 1


def test_hybridjudge_toml_with_top_level_keys(tmp_path: Path) -> None:
    (tmp_path / "hybridjudge.toml").write_text('rubrics = "r3"\n\n[escalation]\non_error = false\n')
    config = load_config(tmp_path)
    assert config.rubrics == "r3"
    assert config.escalation.on_error is False


def test_pyproject_table_wins_over_hybridjudge_toml(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'rubrics = "from-pyproject"')
    (tmp_path / "hybridjudge.toml").write_text('rubrics = "from-toml"\n')
    assert load_config(tmp_path).rubrics == "from-pyproject"


def test_hybridjudge_toml_used_when_pyproject_has_no_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "hybridjudge.toml").write_text('rubrics = "from-toml"\n')
    assert load_config(tmp_path).rubrics == "from-toml"


def test_unknown_key_is_an_error_naming_the_key_and_file(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, 'rubrics = "r"\njudgez = ["openai/x"]')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'judgez'" in message


def test_unknown_nested_key_is_named_with_its_table(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.hybridjudge.escalation]\nmin_conf = 0.5")
    with pytest.raises(ConfigError, match=r"unknown key 'escalation\.min_conf'"):
        load_config(tmp_path)


def test_unknown_key_in_hybridjudge_toml_names_that_file(tmp_path: Path) -> None:
    path = tmp_path / "hybridjudge.toml"
    path.write_text("bogus = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(path) in str(info.value)
    assert "'bogus'" in str(info.value)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("concurrency = 0", "'concurrency'"),
        ('aggregation = "mode"', "'aggregation'"),
        ('cache = "sometimes"', "'cache'"),
        ("retries = -1", "'retries'"),
        ("timeout = 0", "'timeout'"),
        ('judges = ["no-slash"]', "'judges.0.model'"),
        ('judges = [{ model = "openai/x", temperature = 3 }]', "'judges.0.temperature'"),
        ("[tool.hybridjudge.escalation]\nmin_confidence = 1.5", "'escalation.min_confidence'"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, body: str, key: str) -> None:
    write_pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert key in str(info.value)
    assert "invalid configuration" in str(info.value)


def test_bad_judge_model_message_explains_the_form(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'judges = ["gpt-4"]')
    with pytest.raises(ConfigError, match=r"'gpt-4' is not `provider/model`"):
        load_config(tmp_path)


def test_judge_string_shorthand_becomes_model_spec(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'judges = ["openai/gpt-4.1", "anthropic/claude-sonnet-4-5"]')
    judges = load_config(tmp_path).judges
    assert judges == [
        ModelSpec(model="openai/gpt-4.1"),
        ModelSpec(model="anthropic/claude-sonnet-4-5"),
    ]
    assert judges[0].label == "openai/gpt-4.1"


def test_target_model_shorthand(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'target = "openai/x"')
    config = load_config(tmp_path)
    assert isinstance(config.target, TargetSpec)
    assert config.target.model == "openai/x"
    assert config.target.prompt == "{{ input }}"
    assert config.targets == [config.target]


def test_target_callable_shorthand(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'target = "pkg.mod:fn"')
    config = load_config(tmp_path)
    assert config.target == CallableTarget(callable="pkg.mod:fn")
    assert config.targets[0].label == "pkg.mod:fn"


def test_list_of_targets_mixing_forms(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        'target = ["openai/a", "app.qa:answer", { model = "anthropic/b", name = "bee" }]',
    )
    targets = load_config(tmp_path).targets
    assert [type(t) for t in targets] == [TargetSpec, CallableTarget, TargetSpec]
    assert [t.label for t in targets] == ["openai/a", "app.qa:answer", "bee"]


def test_bad_callable_target_names_the_key(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'target = { callable = "no_function:" }')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "target" in str(info.value)
    assert "is not `module:function`" in str(info.value)


def test_gold_accepts_a_single_string(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'gold = "cases.yaml"')
    assert load_config(tmp_path).gold == ["cases.yaml"]


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'concurrency = 4\ncache = "use"\njudges = ["openai/a"]')
    config = load_config(tmp_path, {"concurrency": 2, "cache": "off", "judges": ["openai/b"]})
    assert config.concurrency == 2
    assert config.cache == "off"
    assert [j.model for j in config.judges] == ["openai/b"]


def test_none_overrides_do_not_clobber_the_file(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "concurrency = 4")
    config = load_config(tmp_path, {"concurrency": None, "cache": None})
    assert config.concurrency == 4
    assert config.cache == "use"


def test_bad_override_is_a_config_error_naming_the_flag(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.hybridjudge]\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {"cache": "maybe"})
    assert str(info.value).startswith("--judge-cache maybe: Input should be 'use'")
    assert "pyproject.toml" not in str(info.value)  # the file is fine; the flag is not


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.hybridjudge]\nrubrics = \n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)


def test_malformed_hybridjudge_toml_names_that_file(tmp_path: Path) -> None:
    path = tmp_path / "hybridjudge.toml"
    path.write_text('rubrics = "unterminated\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(path) in str(info.value)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    with pytest.raises(Exception, match="frozen"):
        config.concurrency = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "key", "label"),
    [
        (
            'target = ["openai/gpt-4.1-mini", { model = "openai/gpt-4.1-mini" }]',
            "target",
            "openai/gpt-4.1-mini",
        ),
        (
            'target = [{ callable = "app:one", name = "app" }, '
            '{ model = "openai/m", name = "app" }]',
            "target",
            "app",
        ),
        ('judges = ["openai/gpt-4.1", { model = "openai/gpt-4.1" }]', "judges", "openai/gpt-4.1"),
    ],
)
def test_duplicate_labels_are_rejected_naming_the_label_and_the_fix(
    tmp_path: Path, body: str, key: str, label: str
) -> None:
    write_pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert f"'{key}'" in message and f"labelled '{label}'" in message and "name = " in message


def test_same_model_twice_is_fine_with_distinct_names(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        'target = [{ model = "openai/m", name = "a" }, { model = "openai/m", name = "b" }]\n'
        'judges = [{ model = "openai/j", name = "j1" }, { model = "openai/j", name = "j2" }]',
    )
    config = load_config(tmp_path)
    assert [t.label for t in config.targets] == ["a", "b"]
    assert [j.label for j in config.judges] == ["j1", "j2"]


TEAM_TIERS = """
[tool.hybridjudge.review.tier.legal_expert]
rate = 600
minutes = 20
rank = 3

[tool.hybridjudge.review.tier.tutor]
rate = 35
minutes = 4
rank = 1

[tool.hybridjudge.review.tier.senior]
rate = 65

[tool.hybridjudge.review]
tiers = { contracts = "legal_expert" }
reviewers = { lee = "legal_expert" }
"""


def test_a_team_names_its_own_tiers_with_rate_minutes_and_rank(tmp_path: Path) -> None:
    from pytest_hybridjudge.escalation import choose_tier, review_minutes

    write_pyproject(tmp_path, TEAM_TIERS)
    review = load_config(tmp_path).review
    assert review.tier_names == (
        "annotator",
        "senior",
        "tutor",
        "domain_expert",
        "red_team",
        "legal_expert",
    )
    assert review.rate("legal_expert") == 600 and review.minutes_for("tutor") == 4
    assert review.rate("senior") == 65 and review.minutes_for("senior") == 5  # rest: defaults
    assert review.rank("legal_expert") == 3 and review.rank("red_team") == 2
    assert review.all_rates["legal_expert"] == 600
    # a tag named after a configured tier routes to it, the most expensive tag winning
    assert choose_tier(["tutor"], "correctness", None, review) == "tutor"
    assert choose_tier(["red_team", "legal_expert"], "correctness", None, review) == "legal_expert"
    assert choose_tier(["contracts"], "correctness", None, review) == "legal_expert"
    assert review_minutes("legal_expert", None, review) == 20


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[tool.hybridjudge.review]\ntiers = { medical = "lawyer" }\n',
            "tiers.medical: unknown tier 'lawyer'; known tiers: annotator, senior, domain_expert, "
            "red_team. Define it under [tool.hybridjudge.review.tier.lawyer]",
        ),
        ('[tool.hybridjudge.review]\ndefault_tier = "tutor"\n', "default_tier: unknown tier"),
        ('[tool.hybridjudge.review]\nreviewers = { kim = "boss" }\n', "reviewers.kim: unknown"),
        ("[tool.hybridjudge.review]\nrates = { lawyer = 600 }\n", "rates.lawyer: unknown tier"),
        (
            "[tool.hybridjudge.review.tier.tutor]\nrate = 35\n",
            "tier.tutor is a new tier: give its minutes and rank",
        ),
        (
            '[tool.hybridjudge.review]\ntier = { medical = "domain_expert" }\n',
            "a tier is defined by a table [tool.hybridjudge.review.tier.medical]",
        ),
        (
            "[tool.hybridjudge.review.tier.tutor]\nrate = 35\nminutes = 4\nrank = 1\nprice = 2\n",
            "unknown key 'review.tier.tutor.price'",
        ),
    ],
)
def test_tier_names_and_tables_are_checked(tmp_path: Path, body: str, message: str) -> None:
    write_pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert message in str(caught.value)
    assert "pyproject.toml" in str(caught.value)


def test_a_rubric_may_name_a_configured_tier_and_not_an_unknown_one(tmp_path: Path) -> None:
    from pytest_hybridjudge.rubric import RubricError, RubricLibrary

    write_pyproject(tmp_path, TEAM_TIERS)
    review = load_config(tmp_path).review
    (tmp_path / "legal.md").write_text("---\ntier: legal_expert\n---\nGrade {{ input }}\n")
    assert RubricLibrary(tmp_path, review.tier_names).get("legal").meta.tier == "legal_expert"
    with pytest.raises(RubricError, match=r"legal\.md:2: .*unknown tier 'legal_expert'"):
        RubricLibrary(tmp_path).get("legal")  # only the four built-in tiers
