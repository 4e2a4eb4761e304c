"""Hostile input through a whole `pytest --judge` run: terminal safety, rubric paths, bad files."""

from __future__ import annotations

import json

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
    project.gold("fine.yaml", "cases:\n  - id: fine\n    input: x\n")

    result = project.run("--judge", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*latin1.yaml:3: not UTF-8 text (byte 0xe9*save the file as UTF-8*",
            "*deep.jsonl:1: not usable JSON: nested more than 64 levels deep*",
            "*bomb.yaml:1: not usable YAML: aliases expand * nodes to *",
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out
    assert "MemoryError" not in out
    assert "RecursionError" not in out


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
