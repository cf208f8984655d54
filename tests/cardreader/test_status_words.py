"""Every status word of jpki.md §8, provoked against the virtual card."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_virtualcard_files import JPKI, KENHOJO, Card, select_df, select_ef, verify

from konbini_testkit.cards import PASSWORD, PIN, make_card

KYOTSU = "D3921000310001010100"
DIGEST_INFO = "3031300D060960864801650304020105000420" + "00" * 32
SIGN = f"802A0080{len(DIGEST_INFO) // 2:02X}{DIGEST_INFO}00"

# (row name, commands leading up to it, the command, its status word)
ROWS = [
    ("90 00 normal end", [], select_df(JPKI), "9000"),
    ("63 Cx wrong PIN, x tries left", [select_df(JPKI), select_ef("0018")], verify("9999"), "63C2"),
    ("63 Cx empty VERIFY", [select_df(JPKI), select_ef("001B")], "00200080", "63C5"),
    (
        "63 C0 counter exhausted",
        [select_df(JPKI), select_ef("0018"), verify("0000"), verify("0000")],
        verify("0000"),
        "63C0",
    ),
    ("63 C0 empty VERIFY on a blocked key", [select_df(KENHOJO), select_ef("0012")], "00200080", "63C0"),
    ("63 00 key without retry limit", [select_df(JPKI), select_ef("0010")], verify("1234"), "6300"),
    (
        "69 84 VERIFY on a blocked PIN",
        [select_df(JPKI), select_ef("0018"), verify("0000"), verify("0000"), verify("0000")],
        verify(PIN),
        "6984",
    ),
    ("69 82 READ 0001 without the sign password", [select_df(JPKI), select_ef("0001")], "00B0000004", "6982"),
    ("69 82 signing without the PIN", [select_df(JPKI), select_ef("0017")], SIGN, "6982"),
    (
        "69 85 signing with a certificate as current EF",
        [select_df(JPKI), select_ef("001B"), verify(PASSWORD), select_ef("0001")],
        SIGN,
        "6985",
    ),
    ("69 86 no current EF", [select_df(JPKI)], "00B0000004", "6986"),
    ("69 81 READ BINARY on a key EF", [select_df(JPKI), select_ef("0017")], "00B0000004", "6981"),
    ("6A 82 unknown AID", [], select_df("A000000308000010000100"), "6A82"),
    ("6A 82 unknown FID", [select_df(JPKI)], select_ef("1234"), "6A82"),
    ("6A 83 record not found", [select_df(KYOTSU)], "00B2020C00", "6A83"),
    (
        "6A 86 unknown sign scheme",
        [select_df(JPKI), select_ef("0018"), verify(PIN), select_ef("0017")],
        SIGN[:4] + "07" + SIGN[6:],
        "6A86",
    ),
    ("6A 88 GET DATA of an unknown object", [], "00CADF3005", "6A88"),
    ("6B 00 READ BINARY past the end", [select_df(JPKI), select_ef("0008")], "00B0000301", "6B00"),
    ("67 00 EF select with Lc 3", [select_df(JPKI)], "00A4020C03000A00", "6700"),
    ("67 00 malformed APDU", [], "00B0", "6700"),
    ("67 00 Lc longer than the data", [], "00A4040C0AD392F0", "6700"),
    ("68 81 logical channel 1", [], "01A4040C0AD392F000260100000001", "6881"),
    ("68 81 further interindustry logical channel", [], "40B0000004", "6881"),
    ("6D 00 unknown INS", [], "00500000", "6D00"),
    ("6E 00 unknown CLA", [], "A0A4040C0AD392F000260100000001", "6E00"),
]


@pytest.mark.parametrize("before, command, expected", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_status_word(tmp_path: Path, before: list[str], command: str, expected: str) -> None:
    card = Card(make_card(tmp_path / "card.json"))
    if before:
        card.send(*before)
    assert card.sw(command) == expected


def test_every_row_of_the_spec_table_is_covered() -> None:
    table = {
        "9000",
        "63C",
        "6300",
        "6984",
        "6982",
        "6985",
        "6986",
        "6981",
        "6A82",
        "6A83",
        "6A86",
        "6A88",
        "6B00",
        "6700",
        "6881",
        "6D00",
        "6E00",
    }
    covered = {row[3][:3] if row[3].startswith("63C") else row[3] for row in ROWS}
    assert table <= covered
    assert {"63C2", "63C0"} <= {row[3] for row in ROWS}


def test_the_card_never_answers_61xx_or_6cxx_to_short_reads(tmp_path: Path) -> None:
    card = Card(make_card(tmp_path / "card.json"))
    card.ok(select_df(JPKI), select_ef("000A"))
    for le in (1, 4, 0x7F, 0xFF, 0x00):
        answer = card.send(f"00B00000{le:02X}")
        assert answer[-2:] == b"\x90\x00" and len(answer) - 2 == (le or 256)
