"""How often the gate raises a false alarm, and how often it catches a real regression.

Two parts, and the output says which row comes from which:

* **pipeline**: a few real `pytest --judge --judge-baseline` runs on a generated gold set, the
  target and three judges answered by the loopback server (tests/loopback.py) through the
  real SDKs, with judge noise and injected provider faults. Few runs: each row is one outcome.
* **simulated**: the pure gate function the plugin calls (`gate.gate_verdict`) on many
  simulated paired samples with the same noise model, giving rates with enough trials; beside
  it the prediction-powered change (`stats.ppi_change`) with `--audit` of each side's cases
  reviewed: how often its interval covers the true change, and what it would decide if it gated
  (`gate.ppi_regressed`; the plugin only reports it).

Noise model: each case is truly right or wrong (80% right); on every run the judges misread a
case with probability `--noise` (the same misreading for the whole panel, so it is not
escalated as a split). A worse candidate answers `--drop` of all cases wrongly that the
baseline answered rightly. A provider fault makes a target call fail (HTTP 503, no retries).
The row "baseline reviewed, candidate not" is the usual CI flow: each side escalates
`--escalate` of its cases, the baseline's resolved by a reviewer who knows the truth, the
candidate's unresolved and left out by the gate; the script also prints how often the rule
before issue 15 (unresolved counted as not passed) called REGRESSED on the same trials.

    PYTHONPATH=src python benchmarks/gate.py                 # 500 cases, 2,000 simulated trials
    PYTHONPATH=src python benchmarks/gate.py --trials 500 --skip-pipeline
    PYTHONPATH=src python benchmarks/gate.py --skip-pipeline --audit 0.2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pytest_hybridjudge.config import GateSpec
from pytest_hybridjudge.gate.decide import PairedCounts, gate_verdict, ppi_regressed
from pytest_hybridjudge.stats import PairLabels, ppi_change

STATE: dict[str, object] = {"run": "base", "wrong": set(), "fault": 0.0, "split": 0.0, "style": ""}


def _unit(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def truth(n: int, seed: int = 0) -> np.ndarray:
    """Which cases the baseline truly answers rightly (80%)."""
    return np.random.default_rng(seed).random(n) < 0.8


# --- the real pipeline ----------------------------------------------------------------------


def responder(noise: float, right: np.ndarray):  # type: ignore[no-untyped-def]
    from loopback import Reply, verdict

    def answer(call):  # type: ignore[no-untyped-def]
        run = STATE["run"]
        if not call.is_judge:
            case = int(call.last_user.split()[-1])
            if _unit("fault", run, case) < float(STATE["fault"]):  # type: ignore[arg-type]
                return Reply(status=503)
            good = right[case] and case not in STATE["wrong"]  # type: ignore[operator]
            return f"{'right' if good else 'WRONG'} answer {case}{STATE['style']}"
        case = int(call.prompt.split("answer ")[-1].split()[0])
        good = "right answer" in call.prompt
        if _unit("noise", run, case) < noise:
            good = not good
        if call.model == "judge-b" and _unit("split", run, case) < float(STATE["split"]):  # type: ignore[arg-type]
            good = not good  # the panel splits: the case is escalated
        return verdict(5 if good else 2)

    return answer


def pipeline(args: argparse.Namespace) -> list[tuple[str, str]]:
    """A few real runs: baseline, A/A, A/A with faults, a worse candidate. One outcome each."""
    from loopback import LoopbackLLM

    right = truth(args.cases)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LoopbackLLM(responder(args.noise, right)) as llm:
        root = Path(tmp)
        (root / "rubrics").mkdir()
        (root / "gold").mkdir()
        (root / "pyproject.toml").write_text(
            "[tool.hybridjudge]\n"
            'target = { model = "openai/target" }\n'
            'judges = ["openai/judge-a", "openai/judge-b", "anthropic/judge-c"]\n'
            'retries = 0\ncache = "off"\n'
            f"\n[tool.hybridjudge.gate]\nalpha = {args.alpha}\n"
            f"max_regression = {args.tolerance}\nmax_error_rate = 0.05\n"
        )
        cases = "".join(f'  - {{id: c{i:04d}, input: "question {i}"}}\n' for i in range(args.cases))
        (root / "gold" / "qa.yaml").write_text("rubric: correctness\ncases:\n" + cases)
        env = {
            **os.environ,
            "OPENAI_API_KEY": "k",
            "ANTHROPIC_API_KEY": "k",
            "OPENAI_BASE_URL": llm.openai_base_url,
            "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
        }
        env.pop("GITHUB_STEP_SUMMARY", None)
        quiet = ["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark"]

        def run(tag: str, *extra: str) -> subprocess.CompletedProcess[str]:
            STATE["run"] = tag
            cmd = [sys.executable, "-m", "pytest", "--judge", *quiet, *extra]
            return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)

        run("base")
        baseline = (root / ".hybridjudge" / "runs" / "LATEST").read_text().strip()
        wrong = {i for i in range(args.cases) if right[i] and _unit("drop", i) < args.drop / 0.8}
        scenarios = [
            ("A/A, judge noise", set(), 0.0),
            ("A/A, judge noise, 3% provider faults", set(), 0.03),
            ("A/A, judge noise, 10% provider faults", set(), 0.10),
            (f"candidate {args.drop:.0%} worse", wrong, 0.0),
        ]
        for i, (name, worse, fault) in enumerate(scenarios):
            STATE["wrong"], STATE["fault"] = worse, fault
            done = run(f"cand{i}", "--judge-baseline", baseline)
            gate = json.loads((_run_dir(root) / "gate.json").read_text())
            why = gate["explanation"].split(". ")[0]
            rows.append((name, f"{gate['result']} (pytest exit {done.returncode}) {why[:110]}"))
        # the usual CI flow: main's run reviewed (every escalation resolved), the candidate fresh
        STATE["wrong"], STATE["fault"], STATE["split"] = set(), 0.0, args.escalate
        run("reviewed")
        _resolve_escalations(root, right)
        STATE["style"] = " (again)"  # other outputs: the reviews of main's run do not apply
        done = run("fresh", "--judge-baseline", _run_dir(root).name)
        gate = json.loads((_run_dir(root) / "gate.json").read_text())
        name = f"A/A, baseline reviewed, candidate not ({args.escalate:.0%} escalated)"
        rows.append(
            (
                name,
                f"{gate['result']} (pytest exit {done.returncode}) "
                f"{len(gate['unresolved'])} unresolved left out",
            )
        )
    return rows


def _resolve_escalations(root: Path, right: np.ndarray) -> None:
    """A reviewer decides each escalation of the latest run by the truth."""
    import datetime as dt

    from pytest_hybridjudge.review.resolutions import Resolution

    records = [json.loads(x) for x in (_run_dir(root) / "results.jsonl").read_text().splitlines()]
    lines = [
        Resolution(
            item_id=r["item_id"],
            case_id=r["case_id"],
            verdict="pass" if right[int(r["case_id"][1:])] else "fail",
            reviewer="bench",
            resolved_at=dt.datetime.now(dt.UTC),
        ).model_dump_json()
        for r in records
        if r["outcome"] == "escalated" and not r.get("audit")
    ]
    (root / "review").mkdir(exist_ok=True)
    (root / "review" / "resolutions.jsonl").write_text("".join(x + "\n" for x in lines))


def _run_dir(root: Path) -> Path:
    runs = root / ".hybridjudge" / "runs"
    return runs / (runs / "LATEST").read_text().strip()


# --- simulation of the same gate function ----------------------------------------------------


def ppi_pairs(
    right: np.ndarray,
    cand_right: np.ndarray,
    base: np.ndarray,
    cand: np.ndarray,
    audit: float,
    rng: np.random.Generator,
    reviewed_b: np.ndarray | None = None,
) -> list[PairLabels]:
    """Each side audited at rate `audit` and reviewed (the reviewer knows the truth); a case
    whose output did not change shares the audit draw, as `audit_pick` hashes case and output.
    `reviewed_b`: the baseline's escalations, every one resolved (review probability 1)."""
    draw_b = rng.random(right.size)
    same = right == cand_right
    draw_c = np.where(same, draw_b, rng.random(right.size))
    ib, ic = draw_b < audit, draw_c < audit
    esc = np.zeros(right.size, bool) if reviewed_b is None else reviewed_b
    return [
        PairLabels(
            float(base[i]),
            float(cand[i]),
            float(right[i]) if ib[i] or esc[i] else None,
            float(cand_right[i]) if ic[i] and not esc[i] else None,
            1.0 if esc[i] else audit if ib[i] else None,
            audit if ic[i] and not esc[i] else None,
            audit if same[i] and not esc[i] else None,
        )
        for i in range(right.size)
    ]


def simulate(
    n: int,
    noise: float,
    drop: float,
    fault: float,
    trials: int,
    policy: GateSpec,
    seed: int,
    audit: float,
    escalate: float = 0.0,
) -> dict[str, float]:
    """Share of trials each rule calls REGRESSED (and INCONCLUSIVE, for the McNemar rule), and
    how often the PPI interval covers the true change (trials with a reviewer label).

    `escalate`: the usual CI flow, each side escalating that share of its cases at random; the
    baseline's escalations were resolved by a reviewer (who knows the truth), the candidate's
    are not, and the gate leaves them out (`old` counts them as not passed, as it used to)."""
    rng = np.random.default_rng(seed)
    hits = {"mcnemar": 0, "bootstrap": 0, "ppi": 0, "inconclusive": 0, "covered": 0, "ppi_n": 0}
    hits["old"] = 0
    for t in range(trials):
        right = rng.random(n) < 0.8
        cand_right = right & ~(rng.random(n) < drop / 0.8) if drop else right
        base = right ^ (rng.random(n) < noise)
        cand = cand_right ^ (rng.random(n) < noise)
        up = ~(rng.random(n) < fault)  # the candidate's run meets the faults
        esc_b, esc_c = rng.random(n) < escalate, rng.random(n) < escalate
        base_gate = np.where(esc_b, right, base)  # resolved: the reviewer's label
        keep = up & ~esc_c  # the candidate's unresolved escalations are left out
        b, c = base_gate[keep], cand[keep]
        pairs = ppi_pairs(right[keep], cand_right[keep], base[keep], c, audit, rng, esc_b[keep])
        change = ppi_change(pairs)
        if change is not None:
            true = float(cand_right[keep].mean() - right[keep].mean())
            hits["ppi_n"] += 1
            hits["covered"] += change.low <= true <= change.high
            hits["ppi"] += ppi_regressed(change, policy)
        counts = PairedCounts(
            wins=int(np.sum(c & ~b)),
            losses=int(np.sum(b & ~c)),
            ties_passed=int(np.sum(b & c)),
            ties_failed=int(np.sum(~b & ~c)),
            outages=int(n - up.sum()),
        )
        policy_t = policy.model_copy(update={"seed": seed + t})
        if escalate:
            ob, oc = base_gate[up], (cand & ~esc_c)[up]  # unresolved counted as not passed
            old = PairedCounts(
                int(np.sum(oc & ~ob)),
                int(np.sum(ob & ~oc)),
                int(np.sum(ob & oc)),
                int(np.sum(~ob & ~oc)),
                int(n - up.sum()),
            )
            hits["old"] += gate_verdict(old, policy_t).result == "REGRESSED"
        mc = gate_verdict(counts, policy_t, method="mcnemar")
        hits["mcnemar"] += mc.result == "REGRESSED"
        hits["inconclusive"] += mc.result == "INCONCLUSIVE"
        hits["bootstrap"] += gate_verdict(counts, policy_t, method="bootstrap").result == (
            "REGRESSED"
        )
    covered = hits["covered"] / hits["ppi_n"] if hits["ppi_n"] else float("nan")
    return {**{k: v / trials for k, v in hits.items()}, "covered": covered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.05, help="Judge misreading rate")
    parser.add_argument("--drop", type=float, default=0.10, help="The worse candidate's drop")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--tolerance", type=float, default=0.05, help="gate.max_regression")
    parser.add_argument("--audit", type=float, default=0.05, help="Audit rate on each side")
    parser.add_argument(
        "--escalate", type=float, default=0.10, help="Escalated share of each side's cases"
    )
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    policy = GateSpec(alpha=args.alpha, max_regression=args.tolerance, resamples=1000)
    print(
        f"gate benchmark: {args.cases} cases, judge noise {args.noise:.0%}, alpha {args.alpha}, "
        f"max_regression {args.tolerance:.0%}, max_error_rate 5%"
    )
    if not args.skip_pipeline:
        print("\npipeline (real pytest --judge runs through the SDKs, loopback server; one each):")
        for name, outcome in pipeline(args):
            print(f"  {name:<40} {outcome}")
    print(
        f"\nsimulated ({args.trials} trials each; the gate function the plugin calls; PPI: "
        f"{args.audit:.0%} audits on each side, all reviewed; the PPI would REGRESS if its "
        "interval's upper end is below zero and the drop exceeds max_regression):"
    )
    print(
        "| scenario | goal | McNemar: REGRESSED | bootstrap: REGRESSED | PPI: REGRESSED "
        "| PPI interval covers | INCONCLUSIVE |"
    )
    print("|---|---|---|---|---|---|---|")
    reviewed = (
        f"A/A, {args.cases} cases, baseline reviewed, candidate not ({args.escalate:.0%} escalated)"
    )
    scenarios = [
        ("A/A, 100 cases", 100, 0.0, 0.0, "false alarm <= 5%"),
        (f"A/A, {args.cases} cases", args.cases, 0.0, 0.0, "false alarm <= 5%"),
        (f"A/A, {args.cases} cases, 3% faults", args.cases, 0.0, 0.03, "false alarm <= 5%"),
        (f"A/A, {args.cases} cases, 10% faults", args.cases, 0.0, 0.10, "false alarm <= 5%"),
        (f"{args.drop:.0%} worse, {args.cases} cases", args.cases, args.drop, 0.0, "power >= 80%"),
        (f"{args.drop:.0%} worse, 100 cases", 100, args.drop, 0.0, "(context)"),
        (reviewed, args.cases, 0.0, 0.0, "false alarm <= 5%"),
    ]
    missed, old_rule = [], None
    for i, (name, n, drop, fault, goal) in enumerate(scenarios):
        escalate = args.escalate if name == reviewed else 0.0
        rates = simulate(
            n, args.noise, drop, fault, args.trials, policy, 1000 * i, args.audit, escalate
        )
        if escalate:
            old_rule = rates["old"]
        print(
            f"| {name} | {goal} | {rates['mcnemar']:.1%} | {rates['bootstrap']:.1%} "
            f"| {rates['ppi']:.1%} | {rates['covered']:.1%} | {rates['inconclusive']:.1%} |"
        )
        if goal.startswith("false") and rates["mcnemar"] > 0.05:
            missed.append(f"{name}: false alarms {rates['mcnemar']:.1%}")
        if goal.startswith("power") and rates["mcnemar"] < 0.8:
            missed.append(f"{name}: power {rates['mcnemar']:.1%}")
    if old_rule is not None:
        print(
            f"\n{reviewed}: counting the candidate's unresolved escalations as not passed (the "
            f"rule before issue 15) would call REGRESSED in {old_rule:.1%} of the same trials"
        )
    for line in missed:
        print(f"GOAL MISSED: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
