"""Preference data in the shapes trainers read: TRL (DPO), OpenAI's preference fine-tuning, KTO.

Only preferences someone stands by come in: a pairwise comparison every judge kept when the
order was swapped, or one reviewers decided (`cli.export.preference` picks them). KTO's
unpaired rows also take single outputs reviewers passed or failed. Each row but OpenAI's names
its `source` (`judges` or `review:NAMES`) and `case_id`; OpenAI's format has no place for
them, so its rows hold only what its validator accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..verdict import CaseResult

PreferenceFormat = Literal["trl", "openai", "kto"]
FORMATS: tuple[PreferenceFormat, ...] = ("trl", "openai", "kto")


@dataclass(frozen=True)
class PreferencePair:
    """A preferred and a dispreferred output for one prompt, and who says so."""

    prompt: Any
    """The case's input: text, chat messages, or a mapping of variables."""
    chosen: str
    rejected: str
    source: str
    """`judges` (every judge, both orders) or `review:NAMES`."""
    case_id: str

    @classmethod
    def from_mapping(cls, pair: Mapping[str, Any]) -> PreferencePair:
        """From the `{prompt, chosen, rejected, source, case_id}` mapping of `preference`."""
        return cls(
            pair["prompt"], pair["chosen"], pair["rejected"], pair["source"], pair["case_id"]
        )


def is_messages(value: Any) -> bool:
    """Whether `value` is a chat: a list of `{role, content}` mappings."""
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value)


def prompt_messages(prompt: Any) -> list[dict[str, Any]]:
    """The prompt as chat messages: a chat as it is, text as one user message, a mapping of
    variables as its JSON."""
    if is_messages(prompt):
        return [dict(m) for m in prompt]
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
    return [{"role": "user", "content": text}]


def prompt_text(prompt: Any) -> str:
    """The prompt as text (a mapping of variables as its JSON)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)


def _reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def trl_row(pair: PreferencePair, conversational: bool = False) -> dict[str, Any]:
    """TRL's preference format: standard `{prompt, chosen, rejected}` (the prompt as the case
    had it), or conversational, each a list of messages (chosen and rejected one assistant
    message); with `source` and `case_id`."""
    if conversational:
        prompt: Any = prompt_messages(pair.prompt)
        chosen: Any = _reply(pair.chosen)
        rejected: Any = _reply(pair.rejected)
    else:
        prompt, chosen, rejected = pair.prompt, pair.chosen, pair.rejected
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "source": pair.source,
        "case_id": pair.case_id,
    }


def openai_row(pair: PreferencePair) -> dict[str, Any]:
    """OpenAI's preference fine-tuning (DPO) line, which Together and Fireworks read too:
    `{input: {messages}, preferred_output: [assistant], non_preferred_output: [assistant]}`."""
    return {
        "input": {"messages": prompt_messages(pair.prompt)},
        "preferred_output": _reply(pair.chosen),
        "non_preferred_output": _reply(pair.rejected),
    }


def kto_rows(pair: PreferencePair, conversational: bool = False) -> list[dict[str, Any]]:
    """A pair as KTO's two unpaired rows: the chosen output `label: true`, the rejected
    `label: false`."""
    return [
        kto_row(pair.prompt, pair.chosen, True, pair.source, pair.case_id, conversational),
        kto_row(pair.prompt, pair.rejected, False, pair.source, pair.case_id, conversational),
    ]


def kto_row(
    prompt: Any,
    completion: str,
    label: bool,
    source: str,
    case_id: str,
    conversational: bool = False,
) -> dict[str, Any]:
    """TRL's unpaired preference row `{prompt, completion, label}` (conversational: messages),
    with `source` and `case_id`."""
    return {
        "prompt": prompt_messages(prompt) if conversational else prompt,
        "completion": _reply(completion) if conversational else completion,
        "label": label,
        "source": source,
        "case_id": case_id,
    }


def reviewed_output(
    record: CaseResult, human: str | None, reviewer: str | None, conversational: bool
) -> dict[str, Any] | None:
    """A single (not pairwise) output reviewers passed or failed as a KTO row; None for a
    pairwise record, one without output, or one no reviewer decided."""
    if record.pairwise or record.output is None or human not in ("pass", "fail"):
        return None
    return kto_row(
        record.input,
        record.output,
        human == "pass",
        f"review:{reviewer or 'reviewers'}",
        record.case_id,
        conversational,
    )


def rows(
    pair: PreferencePair, fmt: PreferenceFormat, conversational: bool = False
) -> list[dict[str, Any]]:
    """The lines `pair` becomes in format `fmt`."""
    if fmt == "openai":
        return [openai_row(pair)]
    if fmt == "kto":
        return kto_rows(pair, conversational)
    return [trl_row(pair, conversational)]
