"""Where a provider call comes from (case, role, judge, order): what a batch request's
`custom_id` is made of.

The pipeline sets it where it makes its calls (evaluate, judge, pairwise); the caller reads it
only in batch mode. A context variable, so each case's task and each judge's task under
`asyncio.gather` carry their own.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

BATCH_EXPIRED = "batch expired"  # the reason a case is escalated for, and its error's start
Role = Literal["target", "baseline", "judge", "pairwise", ""]


@dataclass(frozen=True)
class CallSite:
    """The case a call is for, and what the call is to it."""

    case: str = ""  # the case's node id
    role: Role = ""
    judge: str = ""  # the judge's label (judge and pairwise calls)
    order: str = ""  # pairwise: `AB` (candidate first) or `BA`


# CallSite is frozen: the shared default is never changed, only replaced
CALL_SITE: ContextVar[CallSite] = ContextVar("hybridjudge_call_site", default=CallSite())  # noqa: B039


def enter(**changes: str) -> None:
    """Set fields of the current task's call site (the rest stay as the caller set them)."""
    CALL_SITE.set(dataclasses.replace(CALL_SITE.get(), **changes))  # type: ignore[arg-type]
