"""A card issued by certserver works as a virtual My Number card: cardreader reads the file
certserver wrote, a JPKI client talks to the virtual card (in process, and through the real
pcscd + vpcd + pyscard), and certserver accepts the card's authentication.

Both sides use the one card file module (konbini_common.cardfile); this proves that a
card the service issues through it works end to end.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cardreader.inprocess import VirtualCardTransport
from cardreader.jpki import JpkiClient
from cardreader.status import FileNotFoundOnCardError, WrongPinError
from cardreader.transport import Transport
from cardreader.virtualcard import VirtualCard, VpcdBridge
from certserver.db.models.pki import CardCertificate
from certserver.db.models.registry import Household, Municipality, Resident
from certserver.db.session import make_engine, make_session_factory, transaction
from certserver.pki import validation
from certserver.pki.ca import CaBundle
from certserver.services import cards
from certserver.services.card_holders import holder_of_card
from konbini_common.cardfile import CardFile, KenhojoData, check_verifier, new_card_pins

PIN, PASSWORD = "4321", "TESTPASS9"
NAME, ADDRESS = "取手　太郎", "茨城県取手市寺田５１３９番地"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CaBundle:
    return CaBundle.create(tmp_path_factory.mktemp("compat") / "ca")


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _add_resident(session: Session, resident_id: str, birth_date: dt.date, my_number: str) -> None:
    if session.get(Municipality, "08217") is None:
        session.add(
            Municipality(
                code="08217",
                name="取手市",
                name_en="Toride City",
                prefecture="茨城県",
                mayor_title="取手市長",
                mayor_name="試験　市長",
                participating=True,
            )
        )
        session.flush()
    session.add(Household(id=f"hh-{resident_id}", municipality_code="08217", address=ADDRESS))
    session.flush()
    session.add(
        Resident(
            id=resident_id,
            municipality_code="08217",
            household_id=f"hh-{resident_id}",
            name=NAME,
            birth_date=birth_date,
            sex="男",
            address=ADDRESS,
            zokugara="世帯主",
            became_resident_on=dt.date(2010, 4, 1),
            address_since=dt.date(2010, 4, 1),
            my_number=my_number,
        )
    )


def _issue(
    factory: sessionmaker[Session],
    ca: CaBundle,
    out: Path,
    *,
    resident_id: str = "toride-0001",
    birth_date: dt.date = dt.date(1980, 2, 17),
    my_number: str = "123456789018",
) -> cards.IssuedCard:
    with transaction(factory) as session:
        _add_resident(session, resident_id, birth_date, my_number)
    with transaction(factory) as session:
        return cards.issue_card(session, ca, resident_id, pin=PIN, password=PASSWORD, out=out)


@pytest.fixture
def card_path(factory: sessionmaker[Session], ca: CaBundle, tmp_path: Path) -> Path:
    _issue(factory, ca, tmp_path / "card.json")
    return tmp_path / "card.json"


@pytest.fixture(params=["inprocess", pytest.param("pcsc", marks=pytest.mark.pcsc)])
def client(request: pytest.FixtureRequest, card_path: Path) -> Iterator[JpkiClient]:
    """A JPKI client connected to the issued card, in process or through pcscd."""
    card = VirtualCard(card_path)
    transport: Transport
    if request.param == "inprocess":
        with VirtualCardTransport(card) as transport:
            yield JpkiClient(transport)
        return
    from cardreader.pcsc import PcscTransport, wait_for_card, wait_for_removal

    slot = request.getfixturevalue("vpcd_slot")
    assert wait_for_removal(slot.reader, timeout=10.0), "the reader still holds a card"
    with VpcdBridge(card, host=slot.host, port=slot.port):
        assert wait_for_card(slot.reader, timeout=5.0), "pcscd did not see the inserted card"
        with PcscTransport(slot.reader) as transport:
            yield JpkiClient(transport)


def test_cardreader_loads_what_certserver_wrote(factory: sessionmaker[Session], ca: CaBundle, card_path: Path) -> None:
    card = CardFile.load(card_path)
    with factory() as session:
        rows = {r.purpose: r for r in session.scalars(select(CardCertificate))}
    assert card.auth_certificate == rows["auth"].certificate_der
    assert card.sign_certificate == rows["sign"].certificate_der
    assert card.auth_ca_certificate == ca.auth_ca.der and card.sign_ca_certificate == ca.sign_ca.der
    assert (
        card.kenhojo.my_number,
        card.kenhojo.name,
        card.kenhojo.address,
        card.kenhojo.birth_date,
        card.kenhojo.sex,
    ) == ("123456789018", NAME, ADDRESS, "19800217", "1")
    assert {name: (p.max_tries, p.tries_left) for name, p in card.pins.items()} == {
        "auth": (3, 3),
        "sign": (5, 5),
        "kenhojo": (3, 3),
    }
    assert card.token_label == "JPKIAPICCTOKEN2" and card.atr.hex().upper() == "3BE000FF8131FE4514"
    assert os.stat(card_path).st_mode & 0o077 == 0


def test_the_virtual_card_authenticates_and_the_service_accepts_it(
    client: JpkiClient, factory: sessionmaker[Session], ca: CaBundle
) -> None:
    challenge = os.urandom(32)
    auth = client.authenticate(PIN, challenge)
    with factory() as session:
        accepted = validation.validate_card_certificate(session, ca, auth.certificate, dt.datetime.now(dt.UTC))
        holder = holder_of_card(session, accepted)
    validation.verify_challenge_signature(auth.certificate, challenge, auth.signature)
    assert (accepted.municipality_code, holder) == ("08217", "toride-0001")
    with pytest.raises(validation.SignatureInvalidError):
        validation.verify_challenge_signature(auth.certificate, os.urandom(32), auth.signature)


def test_the_pin_the_service_set_is_the_one_the_card_checks(client: JpkiClient, card_path: Path) -> None:
    with pytest.raises(WrongPinError):
        client.verify_auth_pin("1234")
    assert CardFile.load(card_path).pins["auth"].tries_left == 2
    client.verify_auth_pin(PIN)
    assert CardFile.load(card_path).pins["auth"].tries_left == 3


def test_the_card_shows_the_signing_certificate_and_basic_four_the_service_wrote(
    client: JpkiClient, factory: sessionmaker[Session], ca: CaBundle
) -> None:
    sign_der = client.read_sign_certificate(PASSWORD)
    with factory() as session:
        registered = session.scalar(select(CardCertificate).where(CardCertificate.purpose == "sign"))
    assert registered is not None and sign_der == registered.certificate_der
    x509.load_der_x509_certificate(sign_der).verify_directly_issued_by(ca.sign_ca.cert)
    assert client.read_my_number(PIN) == "123456789018"
    four = client.read_basic_four(PIN)
    assert (four.name, four.address, four.birth_date, four.sex) == (NAME, ADDRESS, "19800217", "1")


def test_a_child_card_has_no_signing_certificate_but_authenticates(
    factory: sessionmaker[Session], ca: CaBundle, tmp_path: Path
) -> None:
    _issue(
        factory,
        ca,
        tmp_path / "child.json",
        resident_id="toride-0002",
        birth_date=dt.date(2015, 6, 1),
        my_number="234567890123",
    )
    with VirtualCardTransport(VirtualCard(tmp_path / "child.json")) as transport:
        child = JpkiClient(transport)
        with pytest.raises(FileNotFoundOnCardError):
            child.read_sign_certificate(PASSWORD)
        challenge = os.urandom(32)
        auth = child.authenticate(PIN, challenge)
    with factory() as session:
        accepted = validation.validate_card_certificate(session, ca, auth.certificate, dt.datetime.now(dt.UTC))
        assert holder_of_card(session, accepted) == "toride-0002"
    validation.verify_challenge_signature(auth.certificate, challenge, auth.signature)


def test_a_revoked_card_still_signs_but_the_service_refuses_it(
    client: JpkiClient, factory: sessionmaker[Session], ca: CaBundle
) -> None:
    with transaction(factory) as session:
        assert cards.revoke_cards_of_resident(session, "toride-0001", "lost") == 2
    challenge = os.urandom(32)
    auth = client.authenticate(PIN, challenge)
    validation.verify_challenge_signature(auth.certificate, challenge, auth.signature)
    with factory() as session, pytest.raises(validation.CertificateRevokedError):
        validation.validate_card_certificate(session, ca, auth.certificate, dt.datetime.now(dt.UTC))


# -- the one card file module: what it writes it reads back, for any content ------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=_text,
    address=_text,
    pin=st.from_regex(r"[0-9]{4}", fullmatch=True),
    password=st.from_regex(r"[A-Z0-9]{6,16}", fullmatch=True),
    label=_text,
    with_sign=st.booleans(),
)
def test_any_card_the_issuing_side_writes_reads_back_the_same(
    tmp_path: Path, name: str, address: str, pin: str, password: str, label: str, with_sign: bool
) -> None:
    written = CardFile(
        auth_certificate=b"\x30\x82\x00\x01a",
        auth_ca_certificate=b"\x30\x82\x00\x01b",
        auth_private_key=b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
        sign_certificate=b"\x30\x82\x00\x01c" if with_sign else None,
        sign_ca_certificate=b"\x30\x82\x00\x01d" if with_sign else None,
        sign_private_key=b"-----BEGIN PRIVATE KEY-----\nAQ==\n-----END PRIVATE KEY-----\n" if with_sign else None,
        kenhojo=KenhojoData(my_number="123456789018", name=name, address=address, birth_date="19800217", sex="9"),
        pins=new_card_pins(pin=pin, password=password, kenhojo_pin=pin),
        label=label,
    )
    path = tmp_path / "card.json"
    written.save(path, overwrite=True)
    card = CardFile.load(path)
    assert (card.kenhojo.name, card.kenhojo.address, card.label) == (name, address, label)
    assert card.auth_certificate == written.auth_certificate
    assert card.auth_private_key == written.auth_private_key
    assert card.sign_certificate == written.sign_certificate
    assert card.sign_private_key == written.sign_private_key
    assert check_verifier(card.pins["auth"].verifier, pin.encode())
    assert check_verifier(card.pins["sign"].verifier, password.encode())
    assert not check_verifier(card.pins["auth"].verifier, b"0000" if pin != "0000" else b"1111")


def _tlv_items(data: bytes) -> dict[bytes, bytes]:
    """The two-byte-tag TLVs inside the first constructed two-byte-tag TLV of `data`."""

    def header(at: int) -> tuple[int, int]:  # (length, header size after the 2-byte tag)
        first = data[at + 2]
        if first < 0x80:
            return first, 3
        count = first & 0x7F
        return int.from_bytes(data[at + 3 : at + 3 + count], "big"), 3 + count

    outer_length, outer_header = header(0)
    items: dict[bytes, bytes] = {}
    at, end = outer_header, outer_header + outer_length
    while at < end:
        length, size = header(at)
        items[data[at : at + 2]] = data[at + size : at + size + length]
        at += size + length
    return items


def test_the_card_carries_its_real_municipality_code_and_expiry(card_path: Path) -> None:
    """共通カードAP record 1 = serial(15) + 08217 (取手市) + the card's expiry, the 10th
    birthday after issue for an adult; 券面事項確認AP EF 0003 has DF33 and the code in DF34."""
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()
    next_birthday = dt.date(today.year, 2, 17) if dt.date(today.year, 2, 17) > today else dt.date(today.year + 1, 2, 17)
    expected_expiry = next_birthday.replace(year=next_birthday.year + 9).strftime("%Y%m%d")
    card = VirtualCard(card_path)

    def ok(apdu: str) -> bytes:
        answer = card.process(bytes.fromhex(apdu))
        assert answer[-2:] == b"\x90\x00", apdu
        return answer[:-2]

    ok("00A4040C0AD3921000310001010100")  # 共通カードAP
    record = ok("00B2010C00")[2:].decode("ascii")
    assert record[15:20] == "08217" and record[20:] == expected_expiry
    ok("00A4040C0AD3921000310001010402")  # 券面事項確認AP
    ok("00A4020C020003")
    data = b""
    for _ in range(8):  # READ BINARY 256 bytes at a time until the file ends (a short read)
        chunk = ok(f"00B0{len(data):04X}00")
        data += chunk
        if len(chunk) < 256:
            break
    basic = _tlv_items(data)
    assert list(basic)[:4] == [b"\xdf\x31", b"\xdf\x32", b"\xdf\x33", b"\xdf\x34"]
    assert basic[b"\xdf\x34"] == b"08217"


def test_a_new_card_is_never_written_over_an_existing_one(tmp_path: Path) -> None:
    """`certserver card issue` without --overwrite refuses an existing file and leaves it as it was."""
    path = tmp_path / "card.json"
    path.write_text("someone's card", encoding="utf-8")
    card = CardFile(
        auth_certificate=b"a",
        auth_ca_certificate=b"b",
        auth_private_key=b"k",
        kenhojo=KenhojoData("123456789018", "n", "a", "19800217", "1"),
        pins=new_card_pins(pin="1234", password="ABCDEF", kenhojo_pin="1234"),
    )
    with pytest.raises(FileExistsError):
        card.save(path, overwrite=False)
    assert path.read_text(encoding="utf-8") == "someone's card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
