"""The SQLite completion cache: modes, corrupt rows, and several processes at once."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import sqlite3
from pathlib import Path

from pytest_hybridjudge.cache import CompletionCache
from pytest_hybridjudge.providers import Completion, CompletionRequest

P = {"kind": "openai", "base_url": "p"}


def _request(i: int, **changes: object) -> CompletionRequest:
    fields: dict[str, object] = {"model": "m", "messages": (("user", f"q{i}"),), **changes}
    return CompletionRequest(**fields)  # type: ignore[arg-type]


OPENAI = {"kind": "openai", "base_url": "https://api.openai.com/v1"}


def test_key_covers_what_changes_the_output_only() -> None:
    base = _request(1)
    assert base.cache_key(OPENAI) == _request(1).cache_key(dict(OPENAI))
    changes: list[dict[str, object]] = [
        {"model": "other"},
        {"temperature": 0.5},
        {"max_tokens": 9},
        {"json_schema": {"type": "object"}},
        {"schema_name": "grade"},
        {"logprobs": True},
        {"sample": 1},
        {"structured_output": "json_object"},
    ]
    assert _request(2).cache_key(OPENAI) != base.cache_key(OPENAI)
    for change in changes:
        assert _request(1, **change).cache_key(OPENAI) != base.cache_key(OPENAI), change


def test_key_covers_the_provider_identity() -> None:
    """Another server (base URL) or wire format must not answer from this one's cache."""
    base = _request(1)
    other_server = {**OPENAI, "base_url": "http://127.0.0.1:8080/v1"}
    other_kind = {"kind": "anthropic", "base_url": OPENAI["base_url"]}
    keys = {base.cache_key(identity) for identity in (OPENAI, other_server, other_kind)}
    assert len(keys) == 3


def test_key_is_stable_across_versions() -> None:
    """Pinned: a cache written by this version must still answer (same hash, same form).

    Changed once on purpose when the key gained the provider identity and the structured-output
    mode: caches written before that miss once and are refilled."""
    request = _request(
        1,
        messages=(("system", "s"), ("user", "q")),
        json_schema={"type": "object", "b": [1, 2]},
        logprobs=True,
        sample=2,
    )
    assert request.cache_key(OPENAI) == (
        "dac0869fc188379019a038677c2441319523ea5b4a28d38d5374df594c70b41a"
    )


def test_modes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    key = _request(1).cache_key(P)
    CompletionCache(path, "use").put(key, "p", "m", Completion(text="hello", input_tokens=3))
    hit = CompletionCache(path, "use").get(key)
    assert hit is not None and hit.text == "hello" and hit.cached and hit.input_tokens == 3
    assert CompletionCache(path, "refresh").get(key) is None
    off = CompletionCache(tmp_path / "off.sqlite", "off")
    off.put(key, "p", "m", Completion(text="x"))
    assert off.get(key) is None and not (tmp_path / "off.sqlite").exists()


def test_unreadable_row_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = CompletionCache(path, "use")
    key = _request(1).cache_key(P)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO completions VALUES (?, 'p', 'm', '{broken', 0)", (key,))
    assert cache.get(key) is None
    cache.put(key, "p", "m", Completion(text="fixed"))
    assert (got := cache.get(key)) is not None and got.text == "fixed"


def _writer(path: str, start: int) -> None:
    cache = CompletionCache(Path(path), "use")
    for i in range(start, start + 200):
        cache.put(_request(i).cache_key(P), "p", "m", Completion(text=f"a{i}"))
        cache.get(_request(i - 1).cache_key(P))
    cache.close()


def test_several_processes_share_one_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    CompletionCache(path, "use").close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(path), n * 200)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = CompletionCache(path, "use")
    texts = [cache.get(_request(i).cache_key(P)) for i in range(600)]
    assert [t.text if t else None for t in texts] == [f"a{i}" for i in range(600)]


def test_lookups_of_one_loop_turn_are_read_in_one_query(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite", "use")
    keys = [_request(i).cache_key(P) for i in range(1200)]  # more than one query's share of keys
    for i, key in enumerate(keys[:1000]):
        cache.put(key, "p", "m", Completion(text=f"a{i}", input_tokens=i))
    with sqlite3.connect(tmp_path / "c.sqlite") as db:  # an unreadable row is a miss, as in get
        db.execute("UPDATE completions SET response = '{broken' WHERE key = ?", (keys[7],))
    selects: list[str] = []
    assert cache._db is not None
    cache._db.set_trace_callback(lambda sql: selects.append(sql) if "SELECT" in sql else None)

    async def ask() -> list[Completion | None]:
        return await asyncio.gather(*(cache.lookup(k) for k in [*keys, keys[0]]))

    got = asyncio.run(ask())
    assert len(selects) == 3  # 1,200 keys, 500 a query: not one query per key
    assert [g.text if g else None for g in got] == [
        *(None if i == 7 else f"a{i}" for i in range(1000)),
        *([None] * 200),
        "a0",
    ]
    assert got[0] is not got[-1] and got[0] is not None and got[0].cached and not got[0].requests
    selects.clear()
    assert asyncio.run(ask())[1] is not None and len(selects) == 3  # a new loop reads afresh
    assert CompletionCache(tmp_path / "c.sqlite", "refresh").get(keys[1]) is None
    assert asyncio.run(CompletionCache(tmp_path / "c.sqlite", "refresh").lookup(keys[1])) is None


def test_a_cancelled_lookup_leaves_the_others_asking_for_the_same_key_their_answer(
    tmp_path: Path,
) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite", "use")
    key = _request(1).cache_key(P)
    cache.put(key, "p", "m", Completion(text="a1"))

    async def ask() -> tuple[bool, Completion | None]:
        first = asyncio.ensure_future(cache.lookup(key))
        second = asyncio.ensure_future(cache.lookup(key))
        await asyncio.sleep(0)  # both are waiting for the turn's query
        first.cancel()
        answer = await second
        return first.cancelled(), answer

    cancelled, answer = asyncio.run(ask())
    assert cancelled and answer is not None and answer.text == "a1"


def test_lookup_many_reads_keys_with_one_wait_in_their_order(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite", "use")
    keys = [_request(i).cache_key(P) for i in range(4)]
    for i in (0, 2):
        cache.put(keys[i], "p", "m", Completion(text=f"a{i}"))
    selects: list[str] = []
    assert cache._db is not None
    cache._db.set_trace_callback(lambda sql: selects.append(sql) if "SELECT" in sql else None)

    async def ask() -> tuple[list[Completion | None], Completion | None]:
        together = cache.lookup_many([keys[2], keys[1], keys[0], keys[2]])
        return await asyncio.gather(together, cache.lookup(keys[3]))

    many, alone = asyncio.run(ask())
    assert [c.text if c else None for c in many] == ["a2", None, "a0", "a2"] and alone is None
    assert len(selects) == 1 and all(c.cached and not c.requests for c in many if c)
    off = CompletionCache(tmp_path / "c.sqlite", "refresh")
    assert asyncio.run(off.lookup_many(keys[:2])) == [None, None]


def test_lookup_many_raises_a_failed_read_once(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.sqlite", "use")
    assert cache._db is not None
    cache._db.execute("DROP TABLE completions")  # every read of this turn fails
    keys = [_request(i).cache_key(P) for i in range(3)]
    unretrieved: list[object] = []

    async def ask() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, c: unretrieved.append(c))
        await cache.lookup_many(keys)

    try:
        asyncio.run(ask())
    except sqlite3.OperationalError as exc:
        assert "no such table" in str(exc)
    else:
        raise AssertionError("the failed read was not raised")
    gc.collect()  # an exception never retrieved is reported when its future is collected
    assert unretrieved == []
