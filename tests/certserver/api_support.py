"""Helpers of the kiosk API tests: a small invented registry with cards, a movable clock,
the real app on a real uvicorn on 127.0.0.1, and a kiosk-side client that signs challenges
with the card's key like a card would.

The expensive parts (CA keys, one RSA key per card, document-signing keys) are made once
per test session; each test gets a fresh database (conftest's `db_url`, SQLite and
PostgreSQL) filled with the same registry rows and card certificate rows.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import io
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from certserver.app import create_app, create_municipal_app
from certserver.config import Settings
from certserver.db.models.pki import CardCertificate
from certserver.db.models.registry import CertificateSetting, Fee, Household, Municipality, Resident, ResidentCard
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.documents.signing import SignerStore
from certserver.lgwan.tls import TlsFiles, make_lgwan_pki, server_files, uvicorn_ssl_options
from certserver.pki.ca import CaBundle
from certserver.pki.issuance import IssuedCertificate, issue_certificate
from certserver.pki.profiles import CardHolder, Purpose
from certserver.services.kiosks import KioskCredential, register_kiosk
from konbini_common.japan import JST

MUNICIPALITY = "08217"  # 取手市 (invented residents)
JUMINHYO_FEE = 200  # demo value
INKAN_FEE = 250  # demo value

_SURNAME_PARTS = "山川田中木村本井松竹"
_GIVEN = ("太郎", "花子", "次郎")
_ZOKUGARA = ("世帯主", "妻", "子")
HOUSEHOLDS = 12  # 12 households of 3: 36 residents, each with a card
MEMBERS = 3


@dataclass(frozen=True)
class Person:
    resident_id: str
    name: str
    household_id: str
    zokugara: str
    birth_date: dt.date


def _people() -> list[Person]:
    people = []
    for h in range(HOUSEHOLDS):
        surname = _SURNAME_PARTS[h // 10] + _SURNAME_PARTS[h % 10]
        people.extend(
            Person(
                resident_id=f"toride-{h:02d}{m}",
                name=f"{surname}　{_GIVEN[m]}",
                household_id=f"hh-{h:02d}",
                zokugara=_ZOKUGARA[m],
                birth_date=dt.date(1970 + m * 10, 1 + h % 12, 10),
            )
            for m in range(MEMBERS)
        )
    return people


PEOPLE = _people()
BY_ID = {p.resident_id: p for p in PEOPLE}


@dataclass(frozen=True)
class Card:
    """A card as the kiosk sees it: its certificate and (test-only) key."""

    resident_id: str
    certificate: IssuedCertificate

    @property
    def der(self) -> bytes:
        return self.certificate.der

    @property
    def serial(self) -> str:
        return self.certificate.serial

    def sign(self, challenge: bytes) -> bytes:
        """What the card's COMPUTE DIGITAL SIGNATURE gives for the challenge."""
        key = self.certificate.private_key
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())


@dataclass
class Pki:
    data_dir: Path
    ca: CaBundle
    cards: dict[str, Card]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    data_dir = tmp_path_factory.mktemp("certserver-data")
    ca = CaBundle.create(data_dir / "ca")
    store = SignerStore.open(data_dir / "ca")
    store.ensure_signer(
        MUNICIPALITY,
        "取手市",
        partial(ca.issue_document_signing_certificate, municipality_code=MUNICIPALITY, municipality_name="取手市"),
        chain=(ca.document_ca.cert,),
    )
    issued_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cards = {}
    for person in PEOPLE:
        holder = CardHolder(
            name=person.name, birth_date=person.birth_date, sex="1", address="茨城県取手市寺田５１３９番地"
        )
        cert = issue_certificate(ca, Purpose.AUTH, holder=holder, municipality_code=MUNICIPALITY, issued_at=issued_at)
        cards[person.resident_id] = Card(person.resident_id, cert)
    return Pki(data_dir, ca, cards)


def populate(session: Session, pki: Pki) -> None:
    """The registry and card rows every API test starts from."""
    session.add(
        Municipality(
            code=MUNICIPALITY,
            name="取手市",
            name_en="Toride City",
            prefecture="茨城県",
            mayor_title="取手市長",
            mayor_name="試験　市長",
            participating=True,
        )
    )
    session.flush()
    for kind, fee in (("juminhyo", JUMINHYO_FEE), ("inkan", INKAN_FEE)):
        session.add(
            CertificateSetting(
                municipality_code=MUNICIPALITY,
                kind=kind,
                offered=True,
                opens_at=dt.time(6, 30),
                closes_at=dt.time(23, 0),
                weekdays_only=False,
                max_copies=5,
            )
        )
        session.add(
            Fee(
                municipality_code=MUNICIPALITY,
                kind=kind,
                fee_yen=fee,
                valid_from=dt.date(2016, 7, 1),
                valid_to=None,
                label="demo value",
            )
        )
    for h in range(HOUSEHOLDS):
        session.add(Household(id=f"hh-{h:02d}", municipality_code=MUNICIPALITY, address=f"茨城県取手市寺田{h + 1}番地"))
    session.flush()
    for person in PEOPLE:
        session.add(
            Resident(
                id=person.resident_id,
                municipality_code=MUNICIPALITY,
                household_id=person.household_id,
                name=person.name,
                name_kana=None,
                birth_date=person.birth_date,
                sex="男",
                address=f"茨城県取手市寺田{int(person.household_id[3:]) + 1}番地",
                zokugara=person.zokugara,
                became_resident_on=dt.date(2010, 4, 1),
                address_since=dt.date(2010, 4, 1),
                honseki="茨城県取手市寺田１番地",
                hitto_sha=person.name,
                my_number=None,
                status="active",
            )
        )
    session.flush()
    for card in pki.cards.values():
        cert = card.certificate.certificate
        card_id = secrets.token_hex(16)
        session.add(
            ResidentCard(
                serial=card.serial, card_id=card_id, resident_id=card.resident_id, municipality_code=MUNICIPALITY
            )
        )
        session.add(
            CardCertificate(
                serial=card.serial,
                card_id=card_id,
                municipality_code=MUNICIPALITY,
                purpose="auth",
                subject_cn=card.certificate.common_name,
                issued_at=cert.not_valid_before_utc,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                status="active",
                enrolled_real_card=False,
                certificate_der=card.der,
            )
        )


def populated_with_kiosks(
    db_url: str, pki: Pki, kiosk_ids: Sequence[str], now: dt.datetime | None = None
) -> list[KioskCredential]:
    """`populate` the database at `db_url` and register these kiosks; their credentials."""
    engine = make_engine(db_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            populate(session, pki)
            at = now or dt.datetime.now(dt.UTC)
            return [register_kiosk(session, kiosk_id, "store", at) for kiosk_id in kiosk_ids]
    finally:
        engine.dispose()


class MovableClock:
    """The server's clock in tests: starts at a weekday 10:00 JST in the future (inside the
    kiosk hours and inside every card's validity) and moves only when told."""

    def __init__(self) -> None:
        day = (dt.datetime.now(JST) + dt.timedelta(days=1)).date()
        while day.weekday() >= 5 or (day.month, day.day) in ((12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3)):
            day += dt.timedelta(days=1)
        self._now = dt.datetime.combine(day, dt.time(10, 0), JST).astimezone(dt.UTC)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)

    def set(self, moment: dt.datetime) -> None:
        with self._lock:
            self._now = moment


class LiveServer:
    """The app on a real uvicorn on 127.0.0.1 (a free port), in a thread of this process."""

    def __init__(self, app: Any, tls: TlsFiles | None = None) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        # A municipality's server: mutual TLS, the centre's certificate only.
        tls_options: dict[str, Any] = {} if tls is None else dict(uvicorn_ssl_options(tls))
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            backlog=512,
            **tls_options,
        )
        self.scheme = "http" if tls is None else "https"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@dataclass
class Service:
    """A running service with its database, clock and registered kiosks."""

    url: str
    settings: Settings
    factory: sessionmaker[Session]
    clock: MovableClock
    pki: Pki
    app: Any
    kiosks: dict[str, KioskCredential] = field(default_factory=dict)

    def add_kiosk(self, kiosk_id: str) -> KioskCredential:
        with transaction(self.factory) as session:
            credential = register_kiosk(session, kiosk_id, f"store of {kiosk_id}", self.clock())
        self.kiosks[kiosk_id] = credential
        return credential

    def expire_due(self) -> int:
        """Run the expiry sweep now (the app runs it every few seconds by itself)."""
        return self.app.state.service.transactions.expire_due(self.factory, self.clock())

    def kiosk(self, kiosk_id: str = "K1", **client_args: Any) -> KioskClient:
        credential = self.kiosks.get(kiosk_id) or self.add_kiosk(kiosk_id)
        return KioskClient(self.url, credential, **client_args)


def make_settings(pki: Pki, db_url: str, **overrides: Any) -> Settings:
    return Settings(data_dir=pki.data_dir, database_url=db_url, **overrides)


@pytest.fixture
def service(db_url: str, pki: Pki) -> Iterator[Service]:
    yield from _in_process_service(db_url, pki)


def _in_process_service(db_url: str, pki: Pki) -> Iterator[Service]:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        populate(session, pki)
    clock = MovableClock()
    settings = make_settings(pki, db_url)
    app = create_app(settings, clock=clock)
    try:
        with LiveServer(app) as server:
            yield Service(server.url, settings, factory, clock, pki, app)
    finally:
        engine.dispose()


@contextlib.contextmanager
def municipality_server(settings: Settings, codes: Sequence[str], lgwan_dir: Path) -> Iterator[LiveServer]:
    """A certificate server for `codes` on a real uvicorn with mutual TLS (its own LGWAN
    certificate, the centre's CA as the only client CA)."""
    make_lgwan_pki(lgwan_dir, servers=["test-municipalities"])
    with LiveServer(
        create_municipal_app(settings, list(codes)), tls=server_files(lgwan_dir, "test-municipalities")
    ) as server:
        yield server


@pytest.fixture(params=["in-process", "lgwan"])
def service_over_each_link(request: pytest.FixtureRequest, db_url: str, pki: Pki, tmp_path: Path) -> Iterator[Service]:
    """The service with its municipalities' certificate servers in the centre's process, and
    again behind the LGWAN link: a server of their own on uvicorn with mutual TLS, which the
    centre reaches over HTTPS on 127.0.0.1."""
    if request.param == "in-process":
        yield from _in_process_service(db_url, pki)
        return
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        populate(session, pki)
        codes = list(session.scalars(select(Municipality.code)))
    clock = MovableClock()
    lgwan_dir = tmp_path / "lgwan"
    try:
        with municipality_server(make_settings(pki, db_url), codes, lgwan_dir) as municipal:
            settings = make_settings(
                pki, db_url, lgwan_endpoints=dict.fromkeys(codes, municipal.url), lgwan_tls_dir=lgwan_dir
            )
            app = create_app(settings, clock=clock)
            with LiveServer(app) as server:
                yield Service(server.url, settings, factory, clock, pki, app)
    finally:
        engine.dispose()


class KioskClient:
    """The kiosk's side of the API, one method per endpoint (each returns the response)."""

    def __init__(self, base_url: str, credential: KioskCredential | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": credential.bearer} if credential else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> KioskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, **kw: Any) -> httpx.Response:
        return self.http.post("/api/v1/transactions", **kw)

    def authenticate(
        self, tx_id: str, card: Card, challenge_b64: str, *, signature: bytes | None = None, **kw: Any
    ) -> httpx.Response:
        challenge = base64.b64decode(challenge_b64)
        signature = card.sign(challenge) if signature is None else signature
        return self.http.post(
            f"/api/v1/transactions/{tx_id}/authenticate",
            json={
                "certificate": base64.b64encode(card.der).decode(),
                "signature": base64.b64encode(signature).decode(),
            },
            **kw,
        )

    def order(self, tx_id: str, **body: Any) -> httpx.Response:
        headers = body.pop("headers", None)
        payload = {"municipality_code": MUNICIPALITY, "role": "jushochi", "kind": "juminhyo", **body}
        return self.http.post(f"/api/v1/transactions/{tx_id}/order", json=payload, headers=headers)

    def pay(self, tx_id: str, amount: int, **kw: Any) -> httpx.Response:
        return self.http.post(f"/api/v1/transactions/{tx_id}/payment", json={"amount_yen": amount}, **kw)

    def documents(self, tx_id: str) -> httpx.Response:
        return self.http.get(f"/api/v1/transactions/{tx_id}/documents")

    def document(self, tx_id: str, doc_id: str) -> httpx.Response:
        return self.http.get(f"/api/v1/transactions/{tx_id}/documents/{doc_id}")

    def download_all(self, tx_id: str) -> list[bytes]:
        """List the paid transaction's documents and download each (as a kiosk does before
        it prints); the PDFs in copy order."""
        listed = self.documents(tx_id)
        assert listed.status_code == 200, listed.text
        return [self.document(tx_id, d["document_id"]).content for d in listed.json()["documents"]]

    def printed(self, tx_id: str) -> httpx.Response:
        return self.http.post(f"/api/v1/transactions/{tx_id}/printed")

    def cancel(self, tx_id: str) -> httpx.Response:
        return self.http.post(f"/api/v1/transactions/{tx_id}/cancel")

    def status(self, tx_id: str) -> httpx.Response:
        return self.http.get(f"/api/v1/transactions/{tx_id}")

    # -- whole steps ------------------------------------------------------------------
    def authenticated(self, card: Card) -> tuple[str, dict[str, Any]]:
        """Start and authenticate; (transaction id, authenticate answer)."""
        started = self.start()
        assert started.status_code == 201, started.text
        body = started.json()
        answer = self.authenticate(body["transaction_id"], card, body["challenge"])
        assert answer.status_code == 200, answer.text
        return body["transaction_id"], answer.json()

    def paid(self, card: Card, **order: Any) -> tuple[str, dict[str, Any]]:
        """Start, authenticate, order, pay; (transaction id, order answer)."""
        tx_id, _ = self.authenticated(card)
        ordered = self.order(tx_id, **order)
        assert ordered.status_code == 200, ordered.text
        paid = self.pay(tx_id, ordered.json()["fee_total_yen"])
        assert paid.status_code == 200, paid.text
        return tx_id, ordered.json()


def pdf_text(pdf: bytes) -> str:
    """All text pypdf extracts from a PDF, whitespace removed (CJK names survive)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return "".join("".join((page.extract_text() or "").split()) for page in reader.pages)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message_ja", "message_en"} <= set(body["error"]), body
    return body["error"]["code"]


def replace_card(card: Card, **changes: Any) -> Card:
    return dataclasses.replace(card, **changes)
