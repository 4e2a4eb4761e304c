"""The run a gate compares with: finding its results, reading them, pairing cases by id.

A case is reduced to what a comparison needs (`CaseSide`): passed, not passed (failed, or
escalated and not resolved by a reviewer), a provider outage, or skipped for another reason.
An escalated case nobody has resolved (or whose reviewers disagree) on either side is left out
of the comparison like an outage (`Pairing.unresolved`): it is neither a win nor a loss.
A reviewer's verdict counts as the case's outcome: a by-review record already carries it, and
`with_resolutions` applies the reviewers' file as it is now to records written before. An
audit sample is a confident decision drawn at random for review, not a doubt: it counts as what
the confident panel decided, so the audit rate does not move the gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError, describe_validation_error
from .verdict import review_probability

if TYPE_CHECKING:
    from .review.decisions import ItemDecision

Status = Literal["passed", "not_passed", "outage", "skipped"]
MAX_LINE_BYTES = 16 * 2**20  # one record of results.jsonl; a longer line is not one a run wrote


class BaselineError(InputError):
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
    cases: Mapping[str, CaseSide], decisions: Mapping[str, ItemDecision]
) -> dict[str, CaseSide]:
    """Each side as a run would record it now: where reviewers decided its item (the same case,
    output and rubric version), their decision replaces the judges', as the evaluator does; so
    a baseline run written before the review and a candidate run after it count alike.
    `decisions` is the review desk's, by item id."""
    return {case_id: _resolved(side, decisions) for case_id, side in cases.items()}


def _resolved(side: CaseSide, decisions: Mapping[str, ItemDecision]) -> CaseSide:
    decision = decisions.get(side.item_id or "")
    if decision is None or not side.verified or side.status not in ("passed", "not_passed"):
        return side
    if decision.pending:
        return replace(
            side,
            status="not_passed",
            escalated=True,
            by_review=True,
            review_probability=1.0,
            reason="reviewers disagree",
        )
    status: Status = "passed" if decision.passed else "not_passed"
    outcome = "passed" if decision.passed else "failed"
    return replace(
        side,
        status=status,
        escalated=False,
        by_review=True,
        review_probability=None,
        reason=f"{outcome} by review",
    )


def _review_probability(record: Mapping[str, Any]) -> float | None:
    """`verdict.review_probability` of a record read as JSON."""
    rate = (record.get("policy") or {}).get("audit_rate")
    outcome = str(record.get("outcome"))
    return review_probability(outcome, bool(record.get("audit")), float(rate) if rate else None)


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


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Panel(_Shape):
    passed: bool | None = None


class _Policy(_Shape):
    seed: int | None = None
    audit_rate: float | None = None


class _Verifier(_Shape):
    passed: bool = True


class _Judgment(_Shape):
    judge: str
    consistent: bool | None = None


class _Pairwise(_Shape):
    judgments: list[_Judgment] = []
    baseline_output: str | None = None


class RecordShape(_Shape):
    """The fields of a results.jsonl record that a comparison reads, with their types; checked
    for every line when the file is read, so a wrong type is an error naming its line before
    any provider call, never a traceback later."""

    case_id: str
    target: str | None = None
    outcome: Literal["passed", "failed", "escalated", "skipped"] | None = None
    outage: bool | None = None
    audit: bool | None = None
    panel: _Panel | None = None
    reasons: list[str] | None = None
    resolved_by: list[str] | None = None
    tags: list[str] | None = None
    output: str | None = None
    item_id: str | None = None
    pairwise: _Pairwise | None = None
    policy: _Policy | None = None
    verifiers: list[_Verifier] | None = None


def read_records(
    path: Path, whose: str = "the baseline's", fix: str = BASELINE_FIX
) -> list[dict[str, Any]]:
    """The records of a results.jsonl; a bad line (not JSON, not an object, a field of the
    wrong type, longer than `MAX_LINE_BYTES`) raises `BaselineError` naming `path:line`,
    `whose` results they are and the `fix`. Lines are read one at a time, never more than
    `MAX_LINE_BYTES` + 1 bytes of one."""
    records = []
    try:
        with path.open("rb") as handle:
            for number, record in _bounded_objects(handle, path, fix):
                try:
                    RecordShape.model_validate(record)
                except ValidationError as exc:
                    raise BaselineError(
                        f"{path}:{number}: not a case result a run wrote "
                        f"({describe_validation_error(exc)}); {fix}"
                    ) from None
                records.append(record)
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read {whose} results ({exc}); {fix}") from None
    return records


def _bounded_objects(
    handle: IO[bytes], path: Path, fix: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line, each line read with a size bound."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise BaselineError(
                f"{path}:{number}: line longer than {MAX_LINE_BYTES // 2**20} MB, not a case "
                f"result a run wrote; {fix}"
            )
        line = raw.decode("utf-8").strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{path}:{number}: not valid JSON ({exc.msg}); {fix}") from None
        if not isinstance(data, dict):
            raise BaselineError(f"{path}:{number}: expected a JSON object; {fix}")
        if "case_id" not in data:
            raise BaselineError(f"{path}:{number}: not a case result (no `case_id`); {fix}")
        yield number, data


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
    unresolved: list[str] = field(default_factory=list)  # escalated, not decided by a reviewer
    unresolved_baseline: int = 0  # of them, unresolved on the baseline's side
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
        elif base.escalated or cand.escalated:  # nobody has decided it yet: neither win nor loss
            pairing.unresolved.append(case_id)
            pairing.unresolved_baseline += base.escalated
        else:
            pairing.pairs.append((base, cand))
    return pairing
