"""A loopback Chat Completions server cheap enough that the client's CPU is what a benchmark sees.

``tests/loopback.py`` parses every request, records it and builds each reply; on a 2-core machine
its CPU per call is close to the SDK's, so a benchmark against it measures both.  This one is a
single-threaded ``selectors`` (epoll) loop over raw HTTP/1.1 keep-alive connections that reads
just enough of a request to know where it ends and whether it asks for structured output, then
answers with one of two precomputed bodies: a judge's passing verdict for requests carrying a
``response_format``, a target's answer otherwise.  Optional fixed latency per reply (a timer heap).

Run as a script it prints its URL on the first line of stdout and serves until SIGTERM/SIGINT::

    python benchmarks/fastserver.py --latency 0 --port 0
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import selectors
import signal
import socket
import sys
import time
from typing import Any

VERDICT = json.dumps({"score": 4, "rationale": "looks right", "confidence": 0.9})
ANSWER = "Answer: the benchmark's reply"
MAX_HEADER = 64 * 1024


def completion_body(text: str, prompt_tokens: int = 120, completion_tokens: int = 12) -> bytes:
    """A Chat Completions response as the OpenAI SDK reads it."""
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_800_000_000,
            "model": "bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    ).encode()


def response_bytes(body: bytes, status: str = "200 OK") -> bytes:
    """A whole keep-alive HTTP/1.1 response."""
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


JUDGE_REPLY = response_bytes(completion_body(VERDICT))
TARGET_REPLY = response_bytes(completion_body(ANSWER))
NOT_FOUND = response_bytes(b'{"error": {"message": "not found"}}', "404 Not Found")


def reply_for(head: bytes, body: bytes) -> bytes:
    """The precomputed reply for one request."""
    if not head.startswith(b"POST ") or b"/chat/completions " not in head[:200]:
        return NOT_FOUND
    return JUDGE_REPLY if b'"response_format"' in body else TARGET_REPLY


class Connection:
    """One client socket: bytes read but not yet answered, bytes to write."""

    __slots__ = ("closed", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket):
        self.sock, self.inbox, self.outbox, self.closed = sock, bytearray(), bytearray(), False


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


class FastServer:
    """The server loop; `serve_forever` until `stop` (or a signal) sets `running` False."""

    def __init__(self, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0):
        self.latency = latency
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(1024)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.timers: list[tuple[float, int, Connection, bytes]] = []
        self._seq = 0
        self.running = True
        self.served = 0

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        while self.running:
            timeout = 0.5  # a signal's handler sets `running`; select() resumes after it
            if self.timers:
                timeout = min(timeout, max(0.0, self.timers[0][0] - time.monotonic()))
            for key, events in self.selector.select(timeout):
                if key.data is None:
                    self._accept()
                    continue
                conn: Connection = key.data
                if events & selectors.EVENT_READ:
                    self._read(conn)
                if events & selectors.EVENT_WRITE and not conn.closed:
                    self._flush(conn)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, conn, data = heapq.heappop(self.timers)
                self._send(conn, data)
        self.selector.close()
        self.listener.close()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, Connection(sock))

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        inbox = conn.inbox
        inbox += data
        while True:
            end = inbox.find(b"\r\n\r\n")
            if end < 0:
                if len(inbox) > MAX_HEADER:
                    self._close(conn)
                return
            head = bytes(inbox[:end])
            total = end + 4 + _content_length(head)
            if len(inbox) < total:
                return
            reply = reply_for(head, bytes(inbox[end + 4 : total]))
            del inbox[:total]
            self.served += 1
            if self.latency > 0:
                self._seq += 1
                due = time.monotonic() + self.latency
                heapq.heappush(self.timers, (due, self._seq, conn, reply))
            else:
                self._send(conn, reply)

    def _send(self, conn: Connection, data: bytes) -> None:
        if conn.closed:
            return
        if conn.outbox:
            conn.outbox += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            conn.outbox += data[sent:]
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _flush(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        del conn.outbox[:sent]
        if not conn.outbox:
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        conn.sock.close()

    def stop(self, *_: Any) -> None:
        self.running = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = FastServer(args.latency, port=args.port)
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    print(server.url, flush=True)
    with contextlib.suppress(InterruptedError):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
