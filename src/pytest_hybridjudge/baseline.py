"""The run a gate compares with: finding its results, reading them, pairing cases by id.

A case is reduced to what a comparison needs (`CaseSide`): passed, not passed (failed, or
escalated and not resolved by a reviewer), a provider outage, or skipped for another reason.
A reviewer's verdict counts as the case's outcome: a by-review record already carries it, and
`with_resolutions` applies the reviewers' file as it is now to records written before. An
audit sample is a confident decision drawn at random for review, not a doubt: it counts as what
the confident panel decided, so the audit rate does not move the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import HybridJudgeError
from .files import jsonl_objects

if TYPE_CHECKING:
    from .review.resolutions import Resolution

Status = Literal["passed", "not_passed", "outage", "skipped"]


class BaselineError(HybridJudgeError):
    """The baseline run cannot be found or read; the message names the path and the fix."""


@dataclass(frozen=True)
class CaseSide:
    """One case's result on one side of a comparison."""

    case_id: str
    status: Status
    escalated: bool = False
    by_review: bool = False
    tags: tuple[str, ...] = ()
    input: Any = None
    output: str | None = None
    item_id: str | None = None
    reason: str = ""
    pairwise: bool = False  # judged against the baseline's output: the baseline is the reference
    review_probability: float | None = None  # sent to people: audit rate for an audit, 1 else
    seed: int | None = None  # of the audit draw
    verified: bool = True  # every verifier passed: only then can a review decide the case

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CaseSide:
        """From a results.jsonl record (a `CaseResult` as JSON)."""
        outcome = record.get("outcome")
        reasons = record.get("reasons") or []
        status: Status
        panel = record.get("panel") or {}
        if record.get("outage"):
            status = "outage"
        elif outcome == "passed" or (
            outcome == "escalated" and record.get("audit") and panel.get("passed") is True
        ):
            status = "passed"
        elif outcome in ("failed", "escalated"):
            status = "not_passed"  # an escalated case nobody resolved has not passed
        else:
            status = "skipped"
        return cls(
            case_id=str(record["case_id"]),
            status=status,
            escalated=outcome == "escalated" and not record.get("audit"),
            by_review=bool(record.get("resolved_by")),
            tags=tuple(record.get("tags") or ()),
            input=record.get("input"),
            output=record.get("output"),
            item_id=record.get("item_id"),
            reason="; ".join(reasons),
            pairwise=bool(record.get("pairwise")),
            review_probability=_review_probability(record),
            seed=policy.get("seed") if isinstance(policy := record.get("policy"), dict) else None,
            verified=all(v.get("passed", True) for v in record.get("verifiers") or ()),
        )


def with_resolutions(
    cases: Mapping[str, CaseSide], by_item: Mapping[str, Sequence[Resolution]]
) -> dict[str, CaseSide]:
    """Each side as a run would record it now: where reviewers resolved its item (the same case,
    output and rubric version), their decision replaces the judges', as the evaluator does; so
    a baseline run written before the review and a candidate run after it count alike."""
    return {case_id: _resolved(side, by_item) for case_id, side in cases.items()}


def _resolved(side: CaseSide, by_item: Mapping[str, Sequence[Resolution]]) -> CaseSide:
    from .review.resolutions import human_decision

    lines = by_item.get(side.item_id or "")
    if not lines or not side.verified or side.status not in ("passed", "not_passed"):
        return side
    decision, _ = human_decision(list(lines))
    if decision == "disagree":
        return replace(
            side,
            status="not_passed",
            escalated=True,
            by_review=True,
            review_probability=1.0,
            reason="reviewers disagree",
        )
    status: Status = "passed" if decision == "pass" else "not_passed"
    outcome = "passed" if decision == "pass" else "failed"
    return replace(
        side,
        status=status,
        escalated=False,
        by_review=True,
        review_probability=None,
        reason=f"{outcome} by review",
    )


def _review_probability(record: Mapping[str, Any]) -> float | None:
    """As `passrates.review_probability`, on a record read as JSON."""
    if record.get("audit"):
        rate = (record.get("policy") or {}).get("audit_rate")
        return float(rate) if rate else None
    return 1.0 if record.get("outcome") == "escalated" else None


def resolve_results(value: str, runs_dir: Path, option: str = "--judge-baseline") -> Path:
    """The results.jsonl that `OPTION VALUE` names: a results file, a run folder, a run id
    under `runs_dir`, or `latest`."""
    from .summary import recorded_path

    path = Path(value).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return recorded_path(path.parent, path.name, "results")
    run_id = value
    if value == "latest":  # the newest complete run: a -k subset or a stopped run never is
        from .runstore import latest_complete

        found = latest_complete(runs_dir)
        if found is None:
            raise BaselineError(
                f"{option} latest: no complete run under {runs_dir} yet (`hybridjudge runs` "
                "says why each run is incomplete); run the whole gold set first"
            )
        run_id = found
    if run_id and "/" not in run_id and (runs_dir / run_id).is_dir():
        return recorded_path(runs_dir, run_id, "results")
    known = sorted(p.name for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    hint = f"known runs: {', '.join(known[-5:])}" if known else "no runs recorded yet"
    raise BaselineError(
        f"{option} {value}: no results file, run folder or run id of that name ({hint}); "
        "pass a run id from `hybridjudge runs`, a run folder or a results.jsonl path"
    )


BASELINE_FIX = "point --judge-baseline at a results.jsonl that pytest --judge wrote"


def read_records(
    path: Path, whose: str = "the baseline's", fix: str = BASELINE_FIX
) -> list[dict[str, Any]]:
    """The records of a results.jsonl; a bad line raises `BaselineError` naming `path:line`,
    `whose` results they are and the `fix`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read {whose} results ({exc}); {fix}") from None
    records = []
    for number, record in jsonl_objects(text, path, BaselineError, fix):
        if "case_id" not in record:
            raise BaselineError(f"{path}:{number}: not a case result (no `case_id`); {fix}")
        records.append(record)
    return records


def sides(records: Iterable[Mapping[str, Any]], target: str | None = None) -> dict[str, CaseSide]:
    """Each case's side, by case id, keeping only `target`'s records when one is named.

    Records of several targets without a `target` to choose raise `BaselineError`: cases would
    pair with an arbitrary one of them.
    """
    chosen = [r for r in records if target is None or r.get("target") == target]
    targets = sorted({str(r.get("target", "")) for r in chosen})
    if target is None and len(targets) > 1:
        raise BaselineError(
            f"the results hold several targets ({', '.join(targets)}); name the ones to compare "
            "with `baseline` and `candidate` in [tool.hybridjudge.gate]"
        )
    return {str(r["case_id"]): CaseSide.from_record(r) for r in chosen}


@dataclass
class Pairing:
    """The cases of two runs matched by case id."""

    pairs: list[tuple[CaseSide, CaseSide]] = field(default_factory=list)  # (baseline, candidate)
    outages: list[str] = field(default_factory=list)  # a provider outage on either side
    not_compared: list[str] = field(default_factory=list)  # skipped on a side for another reason
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)


def pair(baseline: Mapping[str, CaseSide], candidate: Mapping[str, CaseSide]) -> Pairing:
    """Match cases by id; every case lands in exactly one list of the `Pairing`."""
    pairing = Pairing()
    for case_id in sorted(baseline.keys() | candidate.keys()):
        base, cand = baseline.get(case_id), candidate.get(case_id)
        if cand is not None and cand.pairwise and cand.status != "skipped":
            # compared with the baseline's output itself: the baseline is the reference (passed)
            base = CaseSide(case_id, "passed", tags=cand.tags, output=cand.output)
        if cand is None:
            pairing.only_baseline.append(case_id)
        elif base is None:
            pairing.only_candidate.append(case_id)
        elif "outage" in (base.status, cand.status):
            pairing.outages.append(case_id)
        elif "skipped" in (base.status, cand.status):
            pairing.not_compared.append(case_id)
        else:
            pairing.pairs.append((base, cand))
    return pairing
