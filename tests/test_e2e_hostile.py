"""Hostile input through a whole `pytest --judge` run: terminal safety, rubric paths, bad files."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from conftest import Project
from loopback import Call, LoopbackLLM, verdict

TITLE = "\x1b]0;pwned\x07"  # OSC: retitles the terminal window
CLEAR = "\x1b[2J"  # CSI: clears the screen
RLO = "\u202e"  # right-to-left override
ISOLATE = "\u2066"  # left-to-right isolate
RAW = ("\x1b", "\x07", RLO, ISOLATE)


def assert_no_raw_controls(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in RAW if c in text})
    assert not found, f"raw control characters reached the terminal: {found}"


def test_escape_sequences_from_outputs_rationales_and_ids_are_not_printed_raw(
    project: Project, llm: LoopbackLLM
) -> None:
    project.pytester.makepyfile(
        hostile_app=f"""
        def answer(case):
            return "sure {TITLE!r}{CLEAR!r} {RLO!r}gnp.exe".replace("'", "")
        """.replace("\\\\", "\\")
    )
    rationale = f"wrong {CLEAR}{RLO}txt.exe {ISOLATE}hidden"

    def judges(call: Call) -> str:
        return verdict(1, confidence=0.95, rationale=rationale)

    llm.responder = judges
    project.config(target="hostile_app:answer")
    project.gold("answers.yaml", "cases:\n  - id: plain-id\n    input: hi\n")
    hostile_id = {"id": f"evil{TITLE}{RLO}", "input": "hi"}
    (project.path / "gold" / "ids.jsonl").write_text(json.dumps(hostile_id) + "\n")

    result = project.run("--judge", "--continue-on-collection-errors", "-rA")
    out = result.stdout.str() + result.stderr.str()

    assert_no_raw_controls(out)
    result.assert_outcomes(failed=1, errors=1)
    # what the text held is shown, visibly escaped: in FAILURES ...
    assert "sure \\x1b]0;pwned\\x07\\x1b[2J \\u202egnp.exe" in out
    assert "wrong \\x1b[2J\\u202etxt.exe \\u2066hidden" in out
    # ... and in the collection error for the id, which names file, line and the fix
    result.stdout.fnmatch_lines(
        ["*ids.jsonl:1: case 'evil\\x1b]0;pwned\\x07\\u202e' id contains*U+001B*printable*"]
    )


def test_rubric_path_leaving_the_rubrics_folder_is_refused(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    (project.path / "outside.md").write_text("---\nscale: [1, 5]\n---\nOUTSIDE {{ input }}\n")
    absolute = str(project.path / "outside")
    project.gold(
        "g.yaml",
        f"""
        cases:
          - id: climbs-out
            input: x
            rubric: "../outside"
          - id: absolute
            input: x
            rubric: "{absolute}"
        """,
    )
    result = project.run("--judge", "--collect-only")
    result.stdout.fnmatch_lines(
        [
            "*g.yaml:2: case 'climbs-out' rubric '../outside' is not a name inside the rubrics"
            f" folder {project.path / 'rubrics'}*"
        ]
    )
    assert "OUTSIDE" not in result.stdout.str()
    assert not [c for c in llm.calls if "OUTSIDE" in c.prompt]

    project.gold("g.yaml", f"cases:\n  - id: absolute\n    input: x\n    rubric: '{absolute}'\n")
    result = project.run("--judge", "--collect-only")
    result.stdout.fnmatch_lines([f"*case 'absolute' rubric '{absolute}' is not a name inside*"])


def test_hostile_gold_files_are_one_line_collection_errors(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    gold = project.path / "gold"
    gold.mkdir()
    (gold / "latin1.yaml").write_bytes("cases:\n  - id: a\n    input: caf\xe9\n".encode("latin-1"))
    deep = "[" * 10_000 + "]" * 10_000
    (gold / "deep.jsonl").write_text(f'{{"id": "d", "input": "x", "metadata": {{"m": {deep}}}}}\n')
    bomb = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
        f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)
    ]
    (gold / "bomb.yaml").write_text(
        "cases:\n  - id: b\n    input: x\n    metadata:\n" + "".join(f"      {b}\n" for b in bomb)
    )
    many = ", ".join(["*big"] * 10_000)  # a 100 kB string 10,000 times: 1 GB expanded
    (gold / "size.yaml").write_text(
        f"cases:\n  - id: s\n    input: &big {'x' * 100_000}\n    metadata: {{many: [{many}]}}\n"
    )
    project.gold("fine.yaml", "cases:\n  - id: fine\n    input: x\n")

    result = project.run("--judge", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=4)
    result.stdout.fnmatch_lines_random(
        [
            "*latin1.yaml:3: not UTF-8 text (byte 0xe9*save the file as UTF-8*",
            "*deep.jsonl:1: not usable JSON: nested more than 64 levels deep*",
            "*bomb.yaml:9: not usable YAML: aliases expand this value to 251.0 kB, more than 10x*",
            "*size.yaml:4: not usable YAML: aliases expand this value to 1.0 GB, more than 10x the"
            " document's 100.0 kB*",
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out
    assert "MemoryError" not in out
    assert "RecursionError" not in out
    results = project.run_dir() / "results.jsonl"
    assert results.stat().st_size < 100_000  # the fine case only, no expanded bomb


def test_tags_pytest_cannot_take_are_collection_errors_not_tracebacks(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    for name, tag in (("empty", '""'), ("private", "_private"), ("colon", '"a: b"')):
        project.gold(f"{name}.yaml", f"cases:\n  - id: {name}\n    input: x\n    tags: [{tag}]\n")
    project.gold("fine.yaml", "cases:\n  - id: fine\n    input: x\n    tags: [geo]\n")
    result = project.run("--judge", "--continue-on-collection-errors", "-m", "geo")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*empty.yaml:2: case 'empty' tag '' (empty) cannot be a pytest marker; a tag is a *",
            "*private.yaml:2: case 'private' tag '_private' cannot be a pytest marker*",
            "*colon.yaml:2: case 'colon' tag 'a: b' cannot be a pytest marker*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "_pytest/" not in result.stdout.str()  # no frames from pytest internals


def test_unbounded_rubric_is_a_collection_error_naming_rubric_and_bound(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    project.rubric(
        "loops",
        "---\nscale: [1, 5]\n---\n"
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    )
    project.rubric("huge", "---\nscale: [1, 5]\n---\n{{ 'a' * 10**9 }}\n")
    project.gold("loops.yaml", "rubric: loops\ncases:\n  - id: l\n    input: x\n")
    project.gold("huge.yaml", "rubric: huge\ncases:\n  - id: h\n    input: x\n")
    result = project.run("--judge", "--continue-on-collection-errors")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*loops.yaml:3: case 'l' *rubrics/loops.md:4: rendering took more than 250,000 steps*",
            "*huge.yaml:3: case 'h' *rubrics/huge.md:4: `*` would build a value of size"
            " 1,000,000,000 (the limit is 1,000,000)*",
        ]
    )
    assert not llm.calls


# --------------------------------------------------------------------------- exports


FORMULAS = ('=HYPERLINK("http://evil.example/x","click")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1")


def _hostile_results(root: Path) -> Path:
    """A results.jsonl whose ids, tags and errors are formulas and control characters."""
    (root / "pyproject.toml").write_text("[tool.hybridjudge]\n")
    records = [
        {"case_id": formula, "target": "t", "outcome": "failed", "tags": [formula]}
        for formula in FORMULAS
    ]
    records.append(
        {
            "case_id": "raw",
            "target": "=t",
            "outcome": "skipped",
            "error": f"server said =cmd|' /C calc'!A0 \x00{TITLE}{CLEAR}{RLO}",
            "reasons": ["-bad"],
        }
    )
    path = root / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_csv_export_neutralises_formulas_and_escapes_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_hybridjudge.cli import main

    results = _hostile_results(tmp_path)
    assert main(["export", "results", "--root", str(tmp_path), "--run", str(results)]) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    assert "\x00" not in out
    out_file = tmp_path / "results.csv"
    args = ["export", "results", "--root", str(tmp_path), "--run", str(results)]
    assert main([*args, "--out", str(out_file)]) == 0
    assert out_file.read_text(encoding="utf-8").splitlines() == out.splitlines()

    rows = list(csv.DictReader(io.StringIO(out)))
    cells = [value for row in rows for value in row.values() if value]
    formulas = [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert not formulas, f"cells a spreadsheet would run as formulas: {formulas}"
    # the text is all there, behind the quote a spreadsheet shows as text
    assert [row["case_id"] for row in rows[:-1]] == ["'" + f for f in FORMULAS]
    assert [row["tags"] for row in rows[:-1]] == ["'" + f for f in FORMULAS]
    raw = rows[-1]
    assert raw["target"] == "'=t"
    assert raw["reasons"] == "'-bad"
    assert raw["error"] == ("server said =cmd|' /C calc'!A0 \\x00\\x1b]0;pwned\\x07\\x1b[2J\\u202e")


def test_jsonl_exports_keep_control_characters_off_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_hybridjudge.cli import main

    results = _hostile_results(tmp_path)
    args = ["export", "results", "--format", "jsonl", "--root", str(tmp_path)]
    assert main([*args, "--run", str(results)]) == 0
    out = capsys.readouterr().out
    assert_no_raw_controls(out)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[-1]["error"].endswith(f"\x00{TITLE}{CLEAR}{RLO}")  # JSON keeps the text exact


# --------------------------------------------------------------------------- CI summary

IMAGE = "![x](https://evil.example/pixel.png)"
HOSTILE_IDS = [
    f"tick`{IMAGE}",
    "``two` ticks",
    "`",
    "<img src=https://evil.example/i.png>",
    "[click](https://evil.example/)",
    "www.evil.example and https://evil.example/a and a@evil.example",
    "pipe|in|id",
    "&#60;script&#62;",
    f"line\nbreak {TITLE}",
]


def _hostile_markdown(tmp_path: Path) -> str:
    from pytest_hybridjudge.ci_summary import ci_markdown
    from pytest_hybridjudge.config import GateSpec
    from pytest_hybridjudge.gate.baseline import pair, sides
    from pytest_hybridjudge.gate.decide import compare
    from pytest_hybridjudge.report import RunReport
    from pytest_hybridjudge.runs import RunPaths
    from pytest_hybridjudge.verdict import CaseResult

    def records(outcome: str) -> list[CaseResult]:
        return [
            CaseResult.model_validate({"case_id": i, "target": "t", "outcome": outcome})
            for i in HOSTILE_IDS
        ]

    pairing = pair(sides(records("passed")), sides(records("failed")))
    policy = GateSpec(critical=[HOSTILE_IDS[0]])
    gate = compare(pairing, policy, f"<b>base</b> {IMAGE}", "[cand](https://evil.example/)")
    gate.position_consistency = {f"judge{IMAGE}": 1.0}
    RunReport("run-id", RunPaths.for_run(tmp_path, "run-id")).write()
    summary = json.loads((tmp_path / "run-id" / "summary.json").read_text())
    summary["run_id"] = f"run`{IMAGE}"
    rubric = {
        "pass_rate": summary["pass_rate"],
        "judge_pass_rate": None,
        "agreement": None,
    }
    summary["rubrics"] = {f"rubric{IMAGE}<script>": rubric}
    return ci_markdown(summary, gate)


CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
UNESCAPED = re.compile(r"(?<!\\)(?:\\\\)*(?:[<>!&`]|\]\()")  # HTML, images, entities, links


def test_ci_summary_shows_hostile_ids_and_names_as_text(tmp_path: Path) -> None:
    markdown = _hostile_markdown(tmp_path)
    assert_no_raw_controls(markdown)
    outside_code = CODE_SPAN.sub("", markdown)
    assert IMAGE not in outside_code
    live = [m.group() for m in UNESCAPED.finditer(outside_code)]
    assert not live, f"unescaped Markdown outside code spans: {live}"
    # every id is one code span whose fence is longer than any run of backticks in it
    assert "``` ``two` ticks ```" in markdown
    assert "`` ` ``" in markdown
    assert f"``tick`{IMAGE}``" in markdown
    assert f"## Run ``run`{IMAGE}``" in markdown


def test_ci_summary_renders_no_image_link_or_html(tmp_path: Path) -> None:
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(_hostile_markdown(tmp_path))
    assert "<img" not in html
    assert "<a " not in html
    assert "<b>" not in html and "<script" not in html
    for case_id in HOSTILE_IDS[:-1]:  # each id is shown whole, as code
        shown = case_id.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        shown = shown.replace('"', "&quot;")
        assert f"<code>{shown}</code>" in html, case_id


# ------------------------------------------------------------------- errors in the right place


def test_a_bad_flag_value_is_blamed_on_the_flag_not_the_file(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config()
    project.gold("g.yaml", "cases:\n  - id: a\n    input: x\n")
    result = project.run("--judge", "--judge-budget", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--judge-budget 0: Input should be greater than 0*"])
    assert "pyproject.toml" not in result.stderr.str()
    assert not llm.calls


def test_a_misspelled_table_is_named_with_the_right_spelling(
    project: Project, llm: LoopbackLLM
) -> None:
    (project.path / "pyproject.toml").write_text(
        '[tool.hybridjuge]\ntarget = "openai/x"\n\n[tool.hybridjuge.escalation]\nseed = 1\n'
    )
    project.gold("g.yaml", "cases:\n  - id: a\n    input: x\n")
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*pyproject.toml: found ?tool.hybridjuge?, which hybridjudge does not read;"
            " did you mean ?tool.hybridjudge??*"
        ]
    )


def test_a_configured_rubrics_folder_that_is_missing_is_named(
    project: Project, llm: LoopbackLLM
) -> None:
    project.config(rubrics="rubrix")
    project.rubric("correctness", "---\nscale: [1, 5]\n---\nGrade {{ input }}\n")
    project.gold("g.yaml", "cases:\n  - id: a\n    input: x\n")
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*rubrics = 'rubrix': the folder {project.path / 'rubrix'} does not exist*"]
    )


def test_unknown_keys_get_a_did_you_mean(project: Project, llm: LoopbackLLM) -> None:
    project.config(escalation={"min_confidense": 0.5}, judgez=["openai/j"])
    result = project.run("--judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines_random(
        [
            "*unknown key 'escalation.min_confidense': did you mean 'min_confidence'?*",
            "*unknown key 'judgez': did you mean 'judges'?*",
        ]
    )
