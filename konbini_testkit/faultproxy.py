"""A small fault-injecting HTTP proxy for link tests, on 127.0.0.1 only.

It stands between an HTTP/1.1 client and a server (the kiosk and the centre today; the centre
and a municipality's certificate server once they are separate) and breaks chosen requests
the way a real line breaks:

- `delay`: the request is held, then delivered late (the client may have given up by then:
  the server still acts on it, as a request stuck in a network would);
- `slow_answer`: the request is delivered at once, the answer is held;
- `reset`: the answer is cut after `after_bytes` bytes and the connection reset (RST);
- `duplicate`: the request is delivered twice (a retransmission); the client gets the
  second answer;
- `refuse`: the connection is reset before anything is delivered (the server looks down).

Each request travels on a fresh upstream connection with `Connection: close`, so every
answer is framed by the end of its connection and one request is one unit of fault. A fault
applies to requests whose request line ("METHOD /path") matches its pattern, `times` times
(None: every time). What was injected is kept in `injected`, for the test to check that its
fault really hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["delay", "slow_answer", "reset", "duplicate", "refuse"]
MAX_HEAD_BYTES = 64 * 1024
UPSTREAM_TIMEOUT_SECONDS = 60.0


class ProxyError(Exception):
    """The proxy could not start, or a request it cannot frame (chunked request bodies)."""


@dataclass
class Fault:
    kind: FaultKind
    pattern: str = ""  # a regular expression searched in "METHOD /path"; "" matches every request
    seconds: float = 0.0  # delay, slow_answer
    after_bytes: int = 0  # reset: how much of the answer gets through
    times: int | None = 1  # how many matching requests it hits; None: all of them

    def matches(self, request_line: str) -> bool:
        return re.search(self.pattern, request_line) is not None


@dataclass(frozen=True)
class Injection:
    kind: FaultKind
    request_line: str


@dataclass
class _Request:
    line: str
    raw: bytes  # head (with Connection: close) and body, as sent upstream


@dataclass
class FaultProxy:
    """`with FaultProxy(port) as proxy:` serves on `proxy.url` until the block ends."""

    upstream_port: int
    upstream_host: str = "127.0.0.1"
    faults: list[Fault] = field(default_factory=list)
    injected: list[Injection] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def hits(self, kind: FaultKind) -> list[str]:
        """The request lines a fault of `kind` was injected into."""
        with self._lock:
            return [i.request_line for i in self.injected if i.kind == kind]

    # -- life -----------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve on a free 127.0.0.1 port in a thread of its own. Raises ProxyError."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise ProxyError("the fault proxy did not start")

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shut() -> None:
            server.close()
            # A request still held by a delay fault goes nowhere: the test is over.
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = self._server = None

    # -- one client connection --------------------------------------------------------------

    def _take(self, request_line: str) -> Fault | None:
        """The first fault that matches, counted as used."""
        with self._lock:
            for fault in self.faults:
                if fault.matches(request_line) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    self.injected.append(Injection(fault.kind, request_line))
                    return fault
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                return
            fault = self._take(request.line)
            if fault is not None and fault.kind == "refuse":
                _reset(writer)
                return
            if fault is not None and fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            answer = await self._deliver(request)
            if fault is not None and fault.kind == "duplicate":
                answer = await self._deliver(request)
            if fault is not None and fault.kind == "slow_answer":
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind == "reset":
                writer.write(answer[: fault.after_bytes])
                await writer.drain()
                _reset(writer)
                return
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ProxyError):
            _reset(writer)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _deliver(self, request: _Request) -> bytes:
        """Send the request on a fresh upstream connection; the whole answer."""
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(self.upstream_host, self.upstream_port), timeout=10
        )
        try:
            up_writer.write(request.raw)
            await up_writer.drain()
            return await asyncio.wait_for(up_reader.read(-1), timeout=UPSTREAM_TIMEOUT_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """One HTTP/1.1 request (head and Content-Length body), its Connection header set to
    close. None when the client closed without sending one. Raises ProxyError."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    except asyncio.LimitOverrunError as exc:
        raise ProxyError("request head too long") from exc
    if len(head) > MAX_HEAD_BYTES:
        raise ProxyError("request head too long")
    lines = head.decode("latin-1").split("\r\n")
    request_line = " ".join(lines[0].split(" ")[:2])
    headers = [line for line in lines[1:] if line]
    length = 0
    kept = []
    for header in headers:
        name, _, value = header.partition(":")
        lowered = name.strip().lower()
        if lowered == "transfer-encoding":
            raise ProxyError("chunked request bodies are not supported")
        if lowered == "content-length":
            length = int(value.strip())
        if lowered not in ("connection", "keep-alive"):
            kept.append(header)
    body = await reader.readexactly(length) if length else b""
    raw = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1") + body
    return _Request(request_line, raw)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, as a broken line does (SO_LINGER 0), not with an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
