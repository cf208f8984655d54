"""The LGWAN contract suite (docs/lgwan.md) against a municipality's certificate server.

By default it starts the in-tree server (`certserver serve municipalities`) on demo data, as
a process of its own, with mutual TLS. Pointed at another vendor's server it needs that
server's address, the folder of the LGWAN test PKI the server trusts (the centre's client
certificate and the municipality CA), a card of a resident who may order a 住民票 there, and
a moment the municipality is open:

    pytest tests/lgwan_contract --municipality-url https://HOST:PORT --lgwan-dir DIR \\
        --contract-card SERIAL:MUNICIPALITY --contract-at 2026-12-07T10:30+09:00
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from lgwan_contract_target import Target

from certserver.cli.init_cmd import initialise
from certserver.config import Settings
from certserver.lgwan.tls import centre_client_files, client_ssl_context
from certserver.pki.profiles import serial_to_hex
from certserver.services.rules.calendar import next_surely_open

START_SECONDS = 60.0


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = request.config.getoption("--municipality-url")
    if url is not None:
        lgwan_dir = Path(request.config.getoption("--lgwan-dir"))
        serial, municipality = str(request.config.getoption("--contract-card")).split(":")
        open_at = str(request.config.getoption("--contract-at"))
        with httpx.Client(verify=client_ssl_context(centre_client_files(lgwan_dir)), timeout=60) as client:
            yield Target(url.rstrip("/"), client, serial, municipality, open_at)
        return
    yield from _in_tree_server(tmp_path_factory.mktemp("lgwan-contract") / "data")


def _in_tree_server(folder: Path) -> Iterator[Target]:
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    initialise(Settings(data_dir=folder), demo=True, split=True, progress=lambda _line: None, now=moment)
    port = _free_port()
    command = [sys.executable, "-m", "certserver", "serve", "municipalities", "--data-dir", str(folder)]
    command += ["--port", str(port), "--render-processes", "0"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(verify=client_ssl_context(centre_client_files(folder / "lgwan")), timeout=60) as client:
            _wait_for(client, url, server)
            open_at = next_surely_open(moment + dt.timedelta(minutes=1)).isoformat()
            yield Target(url, client, _card_serial(folder / "cards" / "toride-0001.json"), "08217", open_at)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _card_serial(card_file: Path) -> str:
    import json

    der = base64.b64decode(json.loads(card_file.read_text(encoding="utf-8"))["jpki"]["auth_certificate"])
    return serial_to_hex(x509.load_der_x509_certificate(der).serial_number)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(client: httpx.Client, url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the certificate server ended (exit {server.returncode})")
        try:
            if client.get(f"{url}/lgwan/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the certificate server did not answer")
