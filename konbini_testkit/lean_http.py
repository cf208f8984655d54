"""A minimal asyncio HTTP/1.1 keep-alive client, for the benchmarks only.

Why it exists: the service benchmarks run the load generator (one Python process) on the
same 2 cores as the server, and httpx's per-request cost (its transport layers, header
models, URL objects, event hooks) grew larger than the server's own cost per request: the
"floor" (empty FastAPI routes) was limited by httpx, not by the server. This client does
only what the benches need, as cheaply as asyncio streams allow:

- plain HTTP/1.1 to a loopback address (no TLS, no proxies, no redirects, no cookies);
- one persistent connection (TCP_NODELAY), requests serialised on it;
- a header block prebuilt once per connection, a minimal status-line and header parser;
- bodies framed by Content-Length, `Transfer-Encoding: chunked`, or the end of the
  connection; JSON request bodies;
- one reconnect when the server had closed the keep-alive connection before the request
  went out (it answered `Connection: close`, or the socket is at EOF);
- clear errors (`LeanHttpError` and subclasses) on malformed responses and timeouts.

It is not a general HTTP client (no HEAD, no 1xx handling, no request bodies but JSON); the
product's kiosk uses httpx (kiosk/client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # always sent with a Content-Length
MAX_HEAD_BYTES = 64 * 1024  # status line + headers; the stream reader's buffer limit


class LeanHttpError(Exception):
    """Base of every error the lean client raises."""


class MalformedResponseError(LeanHttpError):
    """The server's bytes are not an HTTP/1.1 response this client understands, or the
    connection ended in the middle of one."""


class LeanTimeoutError(LeanHttpError):
    """A request (connect, send, and the whole response) took longer than the timeout."""


@dataclass(frozen=True, slots=True)
class LeanResponse:
    status_code: int
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    content: bytes

    def json(self) -> Any:
        """The body decoded as JSON; raises json.JSONDecodeError (a ValueError) if it is not."""
        return jsonlib.loads(self.content)


class LeanConnection:
    """One keep-alive HTTP/1.1 connection to a loopback server; see the module docstring.

    Use `await LeanConnection.open(...)` (or `open_url`), then `await conn.request(...)`,
    and `await conn.close()` (or `async with`)."""

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the lean bench client talks to loopback addresses only, not {host!r}")
        self.host, self.port, self.timeout = host, port, timeout
        fixed = {"Host": f"{host}:{port}", "Accept": "*/*", **headers}
        # Everything after the request line that never changes, encoded once.
        self._fixed_head = (" HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fixed.items())).encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._served = 0  # responses read on the current socket
        self._lock = asyncio.Lock()  # one request at a time on the connection
        self.connections_opened = 0  # sockets opened over this object's life (reconnects show here)

    @classmethod
    async def open(
        cls, host: str, port: int, *, headers: dict[str, str] | None = None, timeout: float = 60.0
    ) -> LeanConnection:
        """Connect to host:port. Raises ValueError for a non-loopback host, OSError if the
        connection is refused, LeanTimeoutError if connecting takes longer than `timeout`."""
        connection = cls(host, port, headers or {}, timeout)
        try:
            async with asyncio.timeout(timeout):
                await connection._connect()
        except TimeoutError as exc:
            raise LeanTimeoutError(f"connecting to {host}:{port} took more than {timeout} s") from exc
        return connection

    @classmethod
    async def open_url(
        cls, base_url: str, *, headers: dict[str, str] | None = None, timeout: float = 60.0
    ) -> LeanConnection:
        """`open` for a base URL "http://host:port"; raises ValueError for any other form."""
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port or parts.path not in ("", "/"):
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        return await cls.open(parts.hostname, parts.port, headers=headers, timeout=timeout)

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD_BYTES)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:  # small requests and responses must not wait for delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._served = 0
        self.connections_opened += 1

    def _drop(self) -> None:
        """Forget the socket (closed by the server, or in an unknown state after an error)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def close(self) -> None:
        """Close the connection; never raises for a socket the server already closed."""
        writer = self._writer
        self._drop()
        if writer is not None:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> LeanConnection:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, json: Any = None) -> LeanResponse:
        """Send one request (a JSON body if `json` is not None) and read the whole response.

        Raises LeanTimeoutError after `timeout` seconds, MalformedResponseError for bytes
        that are not a response (or a connection that ends inside one), OSError if the
        server cannot be reached. After any error the connection is dropped; the next
        request opens a new one."""
        request_line = f"{method} {path}".encode("latin-1")
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            message = b"".join(
                (
                    request_line,
                    self._fixed_head,
                    b"Content-Type: application/json\r\nContent-Length: ",
                    str(len(body)).encode(),
                    b"\r\n\r\n",
                    body,
                )
            )
        elif method in BODY_METHODS:
            message = request_line + self._fixed_head + b"Content-Length: 0\r\n\r\n"
        else:
            message = request_line + self._fixed_head + b"\r\n"
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._exchange(message)
            except TimeoutError as exc:
                self._drop()
                raise LeanTimeoutError(f"{method} {path}: no complete response within {self.timeout} s") from exc
            except BaseException:
                self._drop()
                raise

    async def _exchange(self, message: bytes) -> LeanResponse:
        """Send `message` and read its response, reconnecting once if the idle keep-alive
        socket turns out to have been closed by the server before the request went out."""
        if self._reader is None or self._reader.at_eof():
            self._drop()
            await self._connect()
        reused = self._served > 0
        try:
            return await self._send_and_read(message)
        except (ConnectionResetError, BrokenPipeError, _ClosedBeforeResponseError) as exc:
            if not reused:  # a fresh socket failing is not the idle keep-alive race
                if isinstance(exc, _ClosedBeforeResponseError):
                    raise MalformedResponseError("the server closed a new connection without a response") from None
                raise
        # The socket had served earlier requests and the server closed it while it sat idle
        # (the same race every keep-alive client handles): not one byte of a response came
        # back, so the request was not answered. Send it once more on a fresh connection.
        self._drop()
        await self._connect()
        try:
            return await self._send_and_read(message)
        except _ClosedBeforeResponseError:
            raise MalformedResponseError("the server closed the connection without a response") from None

    async def _send_and_read(self, message: bytes) -> LeanResponse:
        assert self._reader is not None and self._writer is not None
        self._writer.write(message)
        await self._writer.drain()
        response, keep_alive = await _read_response(self._reader)
        self._served += 1
        if not keep_alive:
            self._drop()  # the server said it closes; the next request opens a new socket
        return response


class _ClosedBeforeResponseError(Exception):
    """Internal: EOF before the first byte of a response (a candidate for the one retry)."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[LeanResponse, bool]:
    """Read one response; returns it and whether the connection stays open after it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _ClosedBeforeResponseError from None
        raise MalformedResponseError(f"connection closed inside the response head: {exc.partial[:80]!r}") from None
    except asyncio.LimitOverrunError:
        raise MalformedResponseError(f"response head larger than {MAX_HEAD_BYTES} bytes") from None
    status, headers = _parse_head(head)
    keep_alive = "close" not in headers.get("connection", "").lower()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        content = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise MalformedResponseError(f"bad Content-Length {headers['content-length']!r}") from None
        if length < 0:
            raise MalformedResponseError(f"bad Content-Length {length}")
        content = await _read_exactly(reader, length)
    elif status in (204, 304) or 100 <= status < 200:
        content = b""
    else:  # framed by the end of the connection (HTTP/1.0 style)
        content, keep_alive = await reader.read(), False
    return LeanResponse(status, headers, content), keep_alive


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of a response head ("...\\r\\n\\r\\n")."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise MalformedResponseError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise MalformedResponseError(f"bad header line: {line[:80]!r}")
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(parts[1]), headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """The body of a `Transfer-Encoding: chunked` response, trailers read and discarded."""
    chunks = []
    while True:
        size_line = await _read_line(reader)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise MalformedResponseError(f"bad chunk size line: {size_line[:80]!r}") from None
        if size == 0:
            break
        chunk = await _read_exactly(reader, size + 2)
        if chunk[-2:] != b"\r\n":
            raise MalformedResponseError("chunk not followed by CRLF")
        chunks.append(chunk[:-2])
    while await _read_line(reader):  # trailer fields, up to the empty line
        pass
    return b"".join(chunks)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n"))[:-2]
    except asyncio.IncompleteReadError:
        raise MalformedResponseError("connection closed inside a chunked body") from None
    except asyncio.LimitOverrunError:
        raise MalformedResponseError("chunked body line too long") from None


async def _read_exactly(reader: asyncio.StreamReader, count: int) -> bytes:
    try:
        return await reader.readexactly(count)
    except asyncio.IncompleteReadError as exc:
        raise MalformedResponseError(f"connection closed after {len(exc.partial)} of {count} body bytes") from None
