"""A synchronous httpx client over the ASGI transport (no sockets) for route tests: one
request per event loop, which is all these tests need. (Starlette's TestClient over httpx
is deprecated.)"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI


class AsgiClient:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)
