"""The virtual card's applications and files: SELECT, READ BINARY, READ RECORD, file contents
(jpki.md §1-§3, §6, §7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from cardreader.virtualcard import VirtualCard
from cardreader.virtualcard.kenhojo_ap import basic_four_ef
from konbini_common.cardfile import CardFile, CardFileError, KenhojoData
from konbini_testkit.cards import PASSWORD, PIN, make_card

JPKI = "D392F000260100000001"
KENHOJO = "D3921000310001010408"
KENKAKU = "D3921000310001010402"
KYOTSU = "D3921000310001010100"
JUKI = "D3921000310001010401"
ISD = "A0000001510000"


def select_df(aid: str) -> str:
    return f"00A4040C{len(aid) // 2:02X}{aid}"


def select_ef(fid: str) -> str:
    return f"00A4020C02{fid}"


def verify(secret: str) -> str:
    return f"00200080{len(secret):02X}{secret.encode().hex()}"


class Card:
    """A VirtualCard driven with hex strings, for readable tests."""

    def __init__(self, path: Path, **options: bool) -> None:
        self.card = VirtualCard(path, **options)

    def send(self, *apdus: str) -> bytes:
        answer = b""
        for apdu in apdus:
            answer = self.card.process(bytes.fromhex(apdu))
        return answer

    def ok(self, *apdus: str) -> bytes:
        answer = self.send(*apdus)
        assert answer[-2:] == b"\x90\x00", f"{apdus[-1]} -> {answer[-2:].hex()}"
        return answer[:-2]

    def sw(self, *apdus: str) -> str:
        return self.send(*apdus)[-2:].hex().upper()

    def read_whole(self, first_le: int, restart_from_zero: bool) -> bytes:
        """Read the current EF as clients do: a header read, then chunks (jpki.md §3.2)."""
        header = self.ok(f"00B00000{first_le:02X}")
        total = _tlv_size(header)
        data = b"" if restart_from_zero else header
        while len(data) < total:
            remaining = total - len(data)
            le = 0 if remaining > 255 else remaining
            data += self.ok(f"00B0{len(data):04X}{le:02X}")
        return data


def _tlv_size(header: bytes) -> int:
    """Size of the BER TLV that `header` starts (one- or two-byte tags, 81/82 lengths)."""
    position = 2 if header[0] & 0x1F == 0x1F else 1
    length = header[position]
    if length & 0x80:
        count = length & 0x7F
        return position + 1 + count + int.from_bytes(header[position + 1 : position + 1 + count], "big")
    return position + 1 + length


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


@pytest.fixture
def card(card_path: Path) -> Card:
    return Card(card_path)


# -- SELECT ------------------------------------------------------------------------------


@pytest.mark.parametrize("aid", [JPKI, KENHOJO, KENKAKU, KYOTSU, JUKI, ISD])
def test_every_application_of_the_card_is_selectable_by_its_full_name(card: Card, aid: str) -> None:
    assert card.sw(select_df(aid)) == "9000"


@pytest.mark.parametrize(
    "aid",
    [
        "A000000116",  # coolkey
        "A00000000101",  # muscle
        "A000000308000010",  # PIV
        "D27600012401",  # openpgp
        "D392F00026010000",  # a prefix of the JPKI AID: exact match only
        "D392F00026010000000102",  # longer than the JPKI AID
    ],
)
def test_foreign_and_partial_aids_are_not_found(card: Card, aid: str) -> None:
    assert card.sw(select_df(aid)) == "6A82"


def test_ef_select_needs_a_two_byte_file_id(card: Card) -> None:
    assert card.sw(select_df(JPKI), "00A4020C03000A00") == "6700"
    assert card.sw("00A4020C01" + "0A") == "6700"
    assert card.sw(select_ef("000A")) == "9000"


def test_unknown_file_id_is_not_found_and_files_belong_to_their_application(card: Card) -> None:
    assert card.sw(select_df(JPKI), select_ef("0005")) == "6A82"
    assert card.sw(select_df(KENHOJO), select_ef("000A")) == "6A82"


def test_select_mf_quirks_after_reset_and_with_an_application(card: Card) -> None:
    assert card.sw("00A40000") == "6A86"
    assert card.sw(select_df(JPKI), "00A40000") == "9000"
    assert card.sw("00A4000C023F00") == "6A82"
    assert card.ok(select_ef("0006"), "00B0000020").startswith(b"JPKIAPICCTOKEN2")


# -- READ BINARY -------------------------------------------------------------------------


def test_token_info_is_160_bytes_with_the_space_padded_physical_card_label(card: Card) -> None:
    info = card.ok(select_df(JPKI), select_ef("0006"), "00B0000000")
    assert len(info) == 160
    assert info[:32] == b"JPKIAPICCTOKEN2" + b" " * 17
    assert info[96:100] == bytes.fromhex("0000040D")
    assert int.from_bytes(info[116:120], "big") == 16 and int.from_bytes(info[120:124], "big") == 6
    assert info[124:140] == b"\xff" * 16 and info[140:144] == b"0301"
    assert card.ok("00B0000020") == info[:32]


def test_certificate_availability_says_which_certificates_exist(card: Card, tmp_path: Path) -> None:
    assert card.ok(select_df(JPKI), select_ef("0008"), "00B0000003") == bytes.fromhex("8F8F00")
    child = Card(make_card(tmp_path / "child.json", with_sign=False))
    assert child.ok(select_df(JPKI), select_ef("0008"), "00B0000003") == bytes.fromhex("008F00")
    assert child.sw(select_ef("0001")) == "6A82"
    assert child.sw(select_ef("001A")) == "6A82"


@pytest.mark.parametrize(
    "fid, field", [("000A", "auth_certificate"), ("000B", "auth_ca_certificate"), ("0002", "sign_ca_certificate")]
)
@pytest.mark.parametrize("client", ["opensc", "myna", "go-myna"])
def test_certificates_read_back_byte_exact_with_each_clients_chunking(
    card: Card, card_path: Path, fid: str, field: str, client: str
) -> None:
    expected = getattr(CardFile.load(card_path), field)
    card.ok(select_df(JPKI), select_ef(fid))
    if client == "opensc":  # 4-byte header, then everything from offset 0
        data = card.read_whole(4, restart_from_zero=True)
    elif client == "myna":  # 7-byte header, the rest from offset 7
        data = card.read_whole(7, restart_from_zero=False)
    else:  # Go myna / jpki-rs: 7-byte header, the whole TLV again from 0
        data = card.read_whole(7, restart_from_zero=True)
    assert data == expected and data[:2] == b"\x30\x82"
    x509.load_der_x509_certificate(data)


def test_pyjpki_style_reads_with_le_ff_until_offset_out_of_range(card: Card, card_path: Path) -> None:
    card.ok(select_df(JPKI), select_ef("000A"))
    data = b""
    while True:
        answer = card.send(f"00B0{len(data):04X}FF")
        if answer[-2:] == b"\x6b\x00":
            break
        assert answer[-2:] == b"\x90\x00" and len(answer) > 2
        data += answer[:-2]
    assert data == CardFile.load(card_path).auth_certificate


def test_short_read_returns_the_rest_with_9000_and_past_the_end_is_6b00(card: Card) -> None:
    size = len(card.ok(select_df(JPKI), select_ef("0008"), "00B0000000"))
    assert size == 3
    assert card.send("00B0000100") == bytes.fromhex("8F00") + b"\x90\x00"
    assert card.sw("00B0000301") == "6B00"
    assert card.sw("00B07FFF01") == "6B00"


def test_read_binary_by_short_ef_id_selects_the_file(card: Card, card_path: Path) -> None:
    cert = CardFile.load(card_path).auth_certificate
    assert card.ok(select_df(JPKI), "00B08A0010") == cert[:16]
    assert card.ok("00B0001010") == cert[16:32]  # 000A is now the current EF


def test_read_without_current_ef_is_6986_and_key_or_pin_files_are_6981(card: Card) -> None:
    assert card.sw(select_df(JPKI), "00B0000004") == "6986"
    assert card.sw(select_ef("0017"), "00B0000004") == "6981"
    assert card.sw(select_ef("0018"), "00B0000004") == "6981"


def test_sign_certificate_needs_the_sign_password(card: Card, card_path: Path) -> None:
    assert card.sw(select_df(JPKI), select_ef("0001"), "00B0000004") == "6982"
    card.ok(select_ef("001B"), verify(PASSWORD), select_ef("0001"))
    data = card.read_whole(4, restart_from_zero=True)
    assert data == CardFile.load(card_path).sign_certificate


# -- 券面事項入力補助AP --------------------------------------------------------------------


def test_my_number_is_17_bytes_and_needs_the_pin(card: Card) -> None:
    assert card.sw(select_df(KENHOJO), select_ef("0001"), "00B0000011") == "6982"
    assert card.ok(select_ef("0011"), verify(PIN), select_ef("0001"), "00B0000011") == (
        bytes.fromhex("FF100C") + b"123456789018" + b"\xff\xff"
    )


def _parse_tlv(data: bytes, offset: int) -> tuple[bytes, bytes, int]:
    tag = data[offset : offset + 2]
    length, position = data[offset + 2], offset + 3
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    return tag, data[position : position + length], position + length


def _basic_four(card: Card) -> dict[bytes, bytes]:
    card.ok(select_df(KENHOJO), select_ef("0011"), verify(PIN), select_ef("0002"))
    data = card.read_whole(7, restart_from_zero=False)
    tag, value, end = _parse_tlv(data, 0)
    assert tag == b"\xff\x20" and end == len(data)
    header = len(data) - len(value)
    items: dict[bytes, bytes] = {}
    position = header
    starts = []
    while position < len(data):
        starts.append(position)
        tag, item, position = _parse_tlv(data, position)
        items[tag] = item
    table = items[b"\xdf\x21"]
    assert [int.from_bytes(table[i : i + 2], "big") for i in range(0, 8, 2)] == starts[1:]
    return items


def test_basic_four_items_parse_back_with_a_correct_offset_table(card: Card) -> None:
    items = _basic_four(card)
    assert list(items) == [b"\xdf\x21", b"\xdf\x22", b"\xdf\x23", b"\xdf\x24", b"\xdf\x25"]
    assert items[b"\xdf\x22"].decode() == "取手　太郎"
    assert items[b"\xdf\x23"].decode() == "茨城県取手市寺田５１３９番地"
    assert items[b"\xdf\x24"] == b"19800217" and items[b"\xdf\x25"] == b"1"


@pytest.mark.parametrize("repeat, form", [(3, 0x81), (10, 0x82)])
def test_long_basic_four_items_use_long_form_lengths(tmp_path: Path, repeat: int, form: int) -> None:
    path = make_card(tmp_path / "card.json")
    record = CardFile.load(path)
    record.kenhojo.address = "東京都千代田区千代田１番" * repeat
    record.save(path)
    card = Card(path)
    items = _basic_four(card)
    assert items[b"\xdf\x23"].decode() == record.kenhojo.address
    raw = card.ok("00B0000005")
    assert raw[2] == form


def test_basic_four_needs_the_pin_and_shogo_a_does_not_open_it(card: Card) -> None:
    assert card.sw(select_df(KENHOJO), select_ef("0002"), "00B0000007") == "6982"
    card.ok(select_ef("0014"), verify("123456789018"))
    assert card.sw(select_ef("0002"), "00B0000007") == "6982"
    assert card.ok(select_ef("0001"), "00B0000011")[3:15] == b"123456789018"


@pytest.mark.parametrize("fid, size", [("0003", 336), ("0004", 568), ("0005", 256)])
def test_kenhojo_fixed_size_files_have_the_sizes_go_myna_reads(card: Card, fid: str, size: int) -> None:
    card.ok(select_df(KENHOJO), select_ef("0011"), verify(PIN), select_ef(fid))
    data = b""
    while (answer := card.send(f"00B0{len(data):04X}00"))[-2:] == b"\x90\x00":
        data += answer[:-2]
    assert answer[-2:] == b"\x6b\x00"
    assert len(data) == size


def test_basic_info_has_the_apid_and_a_16_byte_key_id(card: Card) -> None:
    data = card.ok(select_df(KENHOJO), select_ef("0005"), "00B0000000")
    assert data[:5] == bytes.fromhex("FF4082009F")
    assert data[5:12] == bytes.fromhex("DF410401030E01")
    assert data[12:15] == bytes.fromhex("DF4210")


# -- other applications -------------------------------------------------------------------


def test_kyotsu_record_one_holds_28_ascii_digits(card: Card) -> None:
    record = card.ok(select_df(KYOTSU), "00B2010C00")
    assert record[:2] == bytes.fromhex("011C") and len(record) == 30 and record[2:].isdigit()
    assert card.sw("00B2020C00") == "6A83"


def test_kenkaku_card_face_opens_with_shogo_a(card: Card) -> None:
    assert card.sw(select_df(KENKAKU), select_ef("0002"), "00B0000000") == "6982"
    face = card.ok(select_ef("0013"), verify("123456789018"), select_ef("0002"), "00B0000000")
    assert face[:2] == b"\xff\x20" and b"19800217" in face
    assert card.ok(select_ef("0003"), "00B0000000")[:2] == b"\xff\x30"


def test_get_data_returns_the_atr_without_ts(card: Card) -> None:
    assert card.ok("00CA5F5100") == card.card.atr[1:]


def test_select_with_an_le_is_answered_without_data(card: Card) -> None:
    assert card.send(select_df(JPKI) + "00") == b"\x90\x00"
    assert card.send(select_ef("000A") + "00") == b"\x90\x00"


def test_select_asking_for_fci_is_refused(card: Card) -> None:
    assert card.sw(f"00A40400{len(JPKI) // 2:02X}{JPKI}") == "6A86"


def test_a_card_file_without_an_atr_is_refused(tmp_path: Path) -> None:
    path = make_card(tmp_path / "card.json")
    record = CardFile.load(path)
    record.atr = b""
    record.save(path)
    with pytest.raises(CardFileError, match="ATR"):
        VirtualCard(path)


_japanese = st.text(
    alphabet=st.sampled_from("取手太郎花子茨城県寺田番地１２３４５６７８９０－ー　ABCあいう"), min_size=1, max_size=200
)


@given(name=_japanese, address=_japanese, birth=st.from_regex(r"[0-9]{8}", fullmatch=True), sex=st.sampled_from("129"))
@settings(max_examples=200, deadline=None)
def test_basic_four_encoding_round_trips_with_a_true_offset_table(
    name: str, address: str, birth: str, sex: str
) -> None:
    data = basic_four_ef(KenhojoData("123456789018", name, address, birth, sex))
    tag, value, end = _parse_tlv(data, 0)
    assert tag == b"\xff\x20" and end == len(data)
    position, starts, items = len(data) - len(value), [], []
    while position < len(data):
        starts.append(position)
        tag, item, position = _parse_tlv(data, position)
        items.append((tag, item))
    assert [t for t, _ in items] == [b"\xdf\x21", b"\xdf\x22", b"\xdf\x23", b"\xdf\x24", b"\xdf\x25"]
    table = items[0][1]
    assert [int.from_bytes(table[i : i + 2], "big") for i in range(0, 8, 2)] == starts[1:]
    assert [item.decode() for _, item in items[1:]] == [name, address, birth, sex]


def test_a_card_file_without_card_face_takes_code_and_expiry_from_its_certificate(card: Card, card_path: Path) -> None:
    """Older card files have no `card_face`: nothing hash-derived, the certificate says it."""
    record = card.ok(select_df(KYOTSU), "00B2010C00")[2:].decode("ascii")
    auth = x509.load_der_x509_certificate(CardFile.load(card_path).auth_certificate)
    jst = auth.not_valid_after_utc.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert record[15:20] == "00000"  # the factory's CN carries no municipality code
    assert record[20:] == jst.strftime("%Y%m%d")


def _face_items(face: bytes) -> tuple[list[int], dict[bytes, bytes]]:
    """(offset table, {tag: value}) of 券面事項確認AP EF 0002."""
    at = 2
    _, at = _length_at(face, at)
    items: dict[bytes, bytes] = {}
    offsets: list[int] = []
    while at < len(face) and face[at] == 0xDF:
        tag = face[at : at + 2]
        length, start = _length_at(face, at + 2)
        if tag != b"\xdf\x21":
            offsets.append(at)
        items[tag] = face[start : start + length]
        at = start + length
    return offsets, items


def _length_at(data: bytes, at: int) -> tuple[int, int]:
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def test_kenkaku_card_face_has_every_item_in_the_real_structure(card: Card) -> None:
    """jpki.md §7.1: DF21 offsets, DF22..DF2A; images drawn from the holder's data (PNG, white
    background), a JPEG 2000 photo, a signature that the DF24 key verifies, the expiry."""
    import io

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from PIL import Image

    card.ok(select_df(KENKAKU), select_ef("0013"), verify("123456789018"), select_ef("0002"))
    face = card.read_whole(7, restart_from_zero=False)
    offsets, items = _face_items(face)
    tags = [bytes((0xDF, n)) for n in range(0x21, 0x2B)]
    assert list(items) == tags
    assert [int.from_bytes(items[b"\xdf\x21"][i : i + 2], "big") for i in range(0, 18, 2)] == offsets
    assert items[b"\xdf\x22"] == b"19800217" and items[b"\xdf\x23"] == b"1"
    for tag, size in ((b"\xdf\x25", (1024, 192)), (b"\xdf\x26", (1024, 288)), (b"\xdf\x2a", (256, 96))):
        image = Image.open(io.BytesIO(items[tag]))
        assert image.format == "PNG" and image.size == size
        assert image.convert("L").getpixel((size[0] - 1, size[1] - 1)) == 255  # white background
        assert image.convert("L").getextrema()[0] == 0  # and something drawn in black
    photo = Image.open(io.BytesIO(items[b"\xdf\x27"]))
    assert photo.format == "JPEG2000" and photo.size == (288, 360)
    key = serialization.load_der_public_key(items[b"\xdf\x24"])
    assert isinstance(key, rsa.RSAPublicKey)
    signed = face[offsets[0] : offsets[6]]  # DF22..DF27 as stored
    key.verify(items[b"\xdf\x28"], signed, padding.PKCS1v15(), hashes.SHA256())
    assert len(items[b"\xdf\x29"]) == 8 and items[b"\xdf\x29"].isdigit()
    assert len(face) < 32768  # READ BINARY's 15-bit offset reaches all of it


def _tlvs(data: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    """{tag: (the whole TLV, its value)} of consecutive TLVs with 1- or 2-byte tags."""
    found: dict[bytes, tuple[bytes, bytes]] = {}
    at = 0
    while at < len(data) and not _filler_at(data, at):
        tag_size = 2 if data[at] & 0x1F == 0x1F else 1
        length, start = _length_at(data, at + tag_size)
        found[data[at : at + tag_size]] = (data[at : start + length], data[start : start + length])
        at = start + length
    return found


def _filler_at(data: bytes, at: int) -> bool:
    return data[at] == 0xFF and data[at : at + 2] != b"\xff\x30"  # FF30 is a tag, other FF filler


def test_kenhojo_cv_certificate_and_integrity_signature_verify_with_its_public_key(card: Card) -> None:
    """EF 0004: 7F21 { 5F4E { ... 7F49 { 81 modulus, 82 exponent } ... }, 5F37 signature over
    5F4E }; EF 0003's DF33 is a signature over DF31 and DF32 that the same key verifies."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    cv = card.ok(select_df(KENHOJO), select_ef("0004"), "00B0000000") + card.ok("00B00100FF") + card.ok("00B001FF00")
    cv = cv[:568]
    outer = _tlvs(cv)
    assert list(outer) == [b"\x7f\x21"]
    inner = _tlvs(outer[b"\x7f\x21"][1])
    assert list(inner) == [b"\x5f\x4e", b"\x5f\x37"]
    body = _tlvs(inner[b"\x5f\x4e"][1])
    assert {b"\x42", b"\x7f\x49", b"\x5f\x20"} <= set(body)
    key_parts = _tlvs(body[b"\x7f\x49"][1])
    key = rsa.RSAPublicNumbers(
        int.from_bytes(key_parts[b"\x82"][1], "big"), int.from_bytes(key_parts[b"\x81"][1], "big")
    ).public_key()
    assert key.key_size == 2048
    key.verify(inner[b"\x5f\x37"][1], inner[b"\x5f\x4e"][0], padding.PKCS1v15(), hashes.SHA256())

    integrity = card.ok(select_ef("0011"), verify(PIN), select_ef("0003"), "00B0000000")
    integrity += card.ok("00B0010050")
    record = _tlvs(_tlvs(integrity)[b"\xff\x30"][1])
    assert list(record) == [b"\xdf\x31", b"\xdf\x32", b"\xdf\x33"]
    signed = record[b"\xdf\x31"][0] + record[b"\xdf\x32"][0]
    key.verify(record[b"\xdf\x33"][1], signed, padding.PKCS1v15(), hashes.SHA256())
