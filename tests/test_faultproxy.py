"""The link tests' fault proxy does to a request what it says: a counting HTTP server on
127.0.0.1 sees how often and when each request arrives."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from konbini_testkit.faultproxy import Fault, FaultProxy


class _Counting(http.server.BaseHTTPRequestHandler):
    arrivals: ClassVar[list[tuple[str, float]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.arrivals.append((self.path, time.monotonic()))
        answer = b"x" * 1000 + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    _Counting.arrivals = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with FaultProxy(server.server_address[1]) as faults:
            yield faults
    finally:
        server.shutdown()


def _post(proxy: FaultProxy, path: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.post(proxy.url + path, content=b"hello", timeout=timeout)


def test_a_request_without_a_fault_passes_through_unchanged(proxy: FaultProxy) -> None:
    response = _post(proxy, "/a")
    assert response.status_code == 200 and response.content == b"x" * 1000 + b"hello"
    assert [path for path, _ in _Counting.arrivals] == ["/a"]


def test_duplicate_delivers_the_request_twice(proxy: FaultProxy) -> None:
    proxy.add(Fault("duplicate", "/dup"))
    assert _post(proxy, "/dup").status_code == 200
    assert [path for path, _ in _Counting.arrivals] == ["/dup", "/dup"]


def test_delay_delivers_late_even_after_the_client_gave_up(proxy: FaultProxy) -> None:
    proxy.add(Fault("delay", "/late", seconds=1.0))
    sent = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        _post(proxy, "/late", timeout=0.3)
    deadline = time.monotonic() + 5
    while not _Counting.arrivals and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_Counting.arrivals) == 1
    assert _Counting.arrivals[0][1] - sent >= 0.9


def test_reset_cuts_the_answer_and_the_client_sees_a_broken_line(proxy: FaultProxy) -> None:
    proxy.add(Fault("reset", "/cut", after_bytes=100))
    with pytest.raises(httpx.TransportError):
        _post(proxy, "/cut")
    assert len(_Counting.arrivals) == 1  # the server did the work; the answer was lost


def test_refuse_delivers_nothing(proxy: FaultProxy) -> None:
    proxy.add(Fault("refuse", "", times=2))
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            _post(proxy, "/any")
    assert _Counting.arrivals == []
    assert _post(proxy, "/any").status_code == 200  # the fault was used up
    assert proxy.hits("refuse") == ["POST /any", "POST /any"]
