"""The benchmarks' lean HTTP/1.1 client (konbini_testkit/lean_http.py) against a real uvicorn on
127.0.0.1, plus two hand-written asyncio servers for what uvicorn never does (close a
keep-alive socket after reading a request, send bytes that are not HTTP)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from konbini_testkit.lean_http import (
    LeanConnection,
    LeanTimeoutError,
    MalformedResponseError,
)

BLOB = bytes(range(256)) * 1024  # 256 KiB, every byte value
STREAM_PARTS = [b"%PDF-1.7\n", b"x" * 70_000, b"", b"\n%%EOF\n"]
KEEP_ALIVE_SECONDS = 1  # uvicorn closes idle keep-alive connections after this
BEARER = "Bearer lean-test"
T = TypeVar("T")


async def echo(request: Request) -> JSONResponse:
    assert request.client is not None
    return JSONResponse(
        {
            "got": await request.json(),
            "authorization": request.headers.get("authorization"),
            "client_port": request.client.port,
            "content_type": request.headers.get("content-type"),
        }
    )


async def whoami(request: Request) -> JSONResponse:
    assert request.client is not None
    return JSONResponse({"client_port": request.client.port, "body_length": len(await request.body())})


async def blob(_request: Request) -> Response:
    return Response(BLOB, media_type="application/octet-stream")


async def stream(_request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in STREAM_PARTS:
            yield part

    return StreamingResponse(parts(), media_type="application/pdf")


async def bye(request: Request) -> JSONResponse:
    assert request.client is not None
    return JSONResponse({"client_port": request.client.port}, headers={"Connection": "close"})


async def slow(_request: Request) -> JSONResponse:
    await asyncio.sleep(3)
    return JSONResponse({})


APP = Starlette(
    routes=[
        Route("/echo", echo, methods=["POST"]),
        Route("/whoami", whoami, methods=["GET", "POST"]),
        Route("/blob", blob),
        Route("/stream", stream),
        Route("/bye", bye),
        Route("/slow", slow),
    ]
)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """A real uvicorn serving APP on 127.0.0.1 in a thread, for this module."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            APP,
            host="127.0.0.1",
            port=free,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn-lean-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(timeout=20)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a scenario on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_json_post_round_trips_with_the_fixed_headers(port: int) -> None:
    payload = {"certificate": "QUJD", "n": [1, 2.5, None, True], "名前": "山田"}

    async def scenario() -> Any:
        async with await LeanConnection.open("127.0.0.1", port, headers={"Authorization": BEARER}) as conn:
            return await conn.request("POST", "/echo", json=payload)

    response = run(scenario())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["got"] == payload
    assert body["authorization"] == BEARER
    assert body["content_type"] == "application/json"


def test_binary_body_with_content_length_arrives_intact(port: int) -> None:
    async def scenario() -> Any:
        async with await LeanConnection.open_url(f"http://127.0.0.1:{port}") as conn:
            return await conn.request("GET", "/blob")

    response = run(scenario())
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(BLOB))
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(BLOB).digest()


def test_chunked_streaming_body_is_reassembled(port: int) -> None:
    async def scenario() -> Any:
        async with await LeanConnection.open("127.0.0.1", port) as conn:
            first = await conn.request("GET", "/stream")
            after = await conn.request("GET", "/whoami")  # the chunked framing ended exactly
            return first, after, conn.connections_opened

    response, after, opened = run(scenario())
    assert response.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.headers
    assert response.content == b"".join(STREAM_PARTS)
    assert after.status_code == 200 and opened == 1


def test_requests_share_one_keep_alive_connection(port: int) -> None:
    async def scenario() -> tuple[list[int], int]:
        async with await LeanConnection.open("127.0.0.1", port) as conn:
            ports = []
            for i in range(6):
                method = "POST" if i % 2 else "GET"  # a body-less POST sends Content-Length: 0
                response = await conn.request(method, "/whoami")
                assert response.status_code == 200 and response.json()["body_length"] == 0
                ports.append(response.json()["client_port"])
            await conn.request("GET", "/blob")
            ports.append((await conn.request("GET", "/whoami")).json()["client_port"])
            return ports, conn.connections_opened

    ports, opened = run(scenario())
    assert len(set(ports)) == 1  # the server saw every request on one client socket
    assert opened == 1


def test_connection_close_from_the_server_leads_to_a_new_connection(port: int) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with await LeanConnection.open("127.0.0.1", port) as conn:
            closing = await conn.request("GET", "/bye")
            assert closing.headers["connection"] == "close"
            following = await conn.request("GET", "/whoami")
            assert following.status_code == 200
            return closing.json()["client_port"], following.json()["client_port"], conn.connections_opened

    closed_port, next_port, opened = run(scenario())
    assert closed_port != next_port
    assert opened == 2


def test_an_idle_connection_the_server_timed_out_is_reopened(port: int) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with await LeanConnection.open("127.0.0.1", port) as conn:
            before = (await conn.request("GET", "/whoami")).json()["client_port"]
            await asyncio.sleep(KEEP_ALIVE_SECONDS + 0.5)  # uvicorn closes the idle socket
            after = (await conn.request("POST", "/echo", json={"again": 1})).json()["client_port"]
            return before, after, conn.connections_opened

    before, after, opened = run(scenario())
    assert before != after
    assert opened == 2


def test_a_slow_response_raises_a_timeout_and_the_connection_recovers(port: int) -> None:
    async def scenario() -> tuple[float, int]:
        async with await LeanConnection.open("127.0.0.1", port, timeout=0.3) as conn:
            t0 = time.perf_counter()
            with pytest.raises(LeanTimeoutError, match="/slow"):
                await conn.request("GET", "/slow")
            waited = time.perf_counter() - t0
            return waited, (await conn.request("GET", "/whoami")).status_code

    waited, status = run(scenario())
    assert 0.25 <= waited < 2
    assert status == 200


# -- what uvicorn never does, from a hand-written server ------------------------------------

Handler = Callable[[int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _raw_server(handler: Handler) -> tuple[asyncio.Server, int]:
    """An asyncio server on 127.0.0.1 whose `handler(connection_number, reader, writer)`
    decides what each accepted connection gets."""
    accepted = 0

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            await handler(accepted, reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
    return head.split(b"\r\n", 1)[0]


def test_a_request_the_server_dropped_unanswered_on_a_reused_socket_is_sent_once_more() -> None:
    seen: list[tuple[int, bytes]] = []

    async def answer_once_then_drop(number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((number, await _read_request(reader)))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        seen.append((number, await _read_request(reader)))  # read, then close without a word

    async def scenario() -> tuple[list[bytes], int]:
        server, port = await _raw_server(answer_once_then_drop)
        async with server, await LeanConnection.open("127.0.0.1", port) as conn:
            bodies = [(await conn.request("GET", "/a")).content, (await conn.request("GET", "/b")).content]
            return bodies, conn.connections_opened

    bodies, opened = run(scenario())
    assert bodies == [b"ok", b"ok"]
    assert opened == 2
    assert seen[:3] == [(1, b"GET /a HTTP/1.1"), (1, b"GET /b HTTP/1.1"), (2, b"GET /b HTTP/1.1")]


@pytest.mark.parametrize(
    "reply",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno-colon-here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"",  # a new connection closed without a response
    ],
    ids=["not-http", "bad-header", "truncated-body", "bad-chunk-size", "closed-at-once"],
)
def test_malformed_responses_raise_a_clear_error(reply: bytes) -> None:
    async def send_reply(_number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(reply)
        await writer.drain()

    async def scenario() -> None:
        server, port = await _raw_server(send_reply)
        async with server, await LeanConnection.open("127.0.0.1", port) as conn:
            with pytest.raises(MalformedResponseError):
                await conn.request("GET", "/")

    run(scenario())


def test_only_loopback_servers_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run(LeanConnection.open("192.0.2.1", 80))
    with pytest.raises(ValueError, match="http://host:port"):
        run(LeanConnection.open_url("https://127.0.0.1:443"))
