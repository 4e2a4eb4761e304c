"""Targets: what produces the output for a case, a model with a prompt or the user's callable."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import jinja2

from .config import CallableTarget, TargetSpec
from .errors import InputError
from .gold import GoldCase
from .providers import CompletionRequest, split_model
from .sandbox import MAX_OUTPUT, BoundedEnvironment, RenderLimit, render_bounded


class TargetError(InputError):
    """The target cannot be built or produced no usable output; the message says why."""


PLAIN_PROMPT = "{{ input }}"  # the default `target.prompt`: the case's input as it is

# The same bounded sandbox as rubrics: a prompt template cannot hang the run or fill memory.
_ENV = BoundedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=64)
def _prompt_template(source: str) -> jinja2.Template:
    """Compile a target prompt once, not once per case."""
    return _ENV.from_string(source)


def target_messages(spec: TargetSpec, case: GoldCase) -> tuple[tuple[str, str], ...]:
    """The messages a model target sends: the case's own `messages`, or the rendered prompt."""
    messages: list[tuple[str, str]] = [("system", spec.system)] if spec.system else []
    if case.messages:
        messages += [(m.role, m.content) for m in case.messages]
        return tuple(messages)
    if spec.prompt == PLAIN_PROMPT and type(case.input) is str and len(case.input) <= MAX_OUTPUT:
        messages.append(("user", case.input))  # what it renders to, without a render per case
        return tuple(messages)
    try:
        prompt = render_bounded(_prompt_template(spec.prompt), case.variables())
    except jinja2.TemplateError as exc:
        fix = (
            "keep the template's loops and values small"
            if isinstance(exc, RenderLimit)
            else "give the case that variable or change `target.prompt`"
        )
        raise TargetError(
            f"target prompt {spec.prompt!r} cannot render for case '{case.id}': {exc}; {fix}"
        ) from None
    messages.append(("user", prompt))
    return tuple(messages)


def target_request(spec: TargetSpec, case: GoldCase) -> tuple[str, CompletionRequest]:
    """The provider name and request for a model target."""
    provider, model = split_model(spec.model)
    request = CompletionRequest(
        model=model,
        messages=target_messages(spec, case),
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
    )
    return provider, request


def load_callable(spec: CallableTarget, rootdir: Path | None = None) -> Callable[..., Any]:
    """Import `module:function` (the project root is importable); errors say what is missing."""
    module_name, _, func_name = spec.callable.partition(":")
    if rootdir is not None and str(rootdir) not in sys.path:
        sys.path.insert(0, str(rootdir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(
            f"target '{spec.callable}': cannot import {module_name} ({exc}); "
            "install it or put it under the project root"
        ) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise TargetError(f"target '{spec.callable}': {module_name} has no function {func_name}")
    return cast("Callable[..., Any]", func)


async def call_app(func: Callable[..., Any], case: GoldCase, label: str) -> str:
    """Call the user's function with the case; sync functions run in a worker thread."""
    if inspect.iscoroutinefunction(func):
        result = await func(case)
    else:
        result = await asyncio.to_thread(func, case)
        if inspect.isawaitable(result):
            result = await result
    if not isinstance(result, str):
        raise TargetError(
            f"target '{label}' returned {type(result).__name__} for case '{case.id}'; "
            "return the output text (str)"
        )
    return result
