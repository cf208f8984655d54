"""VERIFY, the retry counters, blocking, the empty VERIFY, CHANGE REFERENCE DATA and the
security state of the virtual card (jpki.md §4, §12 items 5-7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_virtualcard_files import JPKI, KENHOJO, Card, select_df, select_ef, verify

from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PASSWORD, PIN, make_card


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    return make_card(tmp_path / "card.json")


@pytest.fixture
def card(card_path: Path) -> Card:
    return Card(card_path)


def tries_on_disk(path: Path, name: str = "auth") -> int:
    return CardFile.load(path).pins[name].tries_left


def test_empty_verify_reports_tries_without_using_one(card: Card, card_path: Path) -> None:
    assert card.sw(select_df(JPKI), select_ef("0018"), "00200080") == "63C3"
    assert card.sw("00200080") == "63C3"
    assert card.sw(select_ef("001B"), "00200080") == "63C5"
    assert tries_on_disk(card_path) == 3


def test_wrong_pins_count_down_then_block_with_63c0_then_6984(card: Card, card_path: Path) -> None:
    card.ok(select_df(JPKI), select_ef("0018"))
    assert card.sw(verify("9999")) == "63C2"
    assert tries_on_disk(card_path) == 2
    assert card.sw(verify("0000")) == "63C1"
    assert card.sw(verify("1111")) == "63C0"
    assert tries_on_disk(card_path) == 0
    assert card.sw(verify(PIN)) == "6984"  # even the right PIN
    assert card.sw(verify("9999")) == "6984"
    assert card.sw("00200080") == "63C0"
    assert tries_on_disk(card_path) == 0


def test_correct_pin_resets_the_counter_and_empty_verify_still_answers_63cx(card: Card, card_path: Path) -> None:
    card.ok(select_df(JPKI), select_ef("0018"))
    assert card.sw(verify("9999")) == "63C2"
    assert card.sw(verify(PIN)) == "9000"
    assert tries_on_disk(card_path) == 3
    assert card.sw("00200080") == "63C3"  # OpenSC's GET_INFO needs SW1 63 even when logged in


def test_correct_pin_with_a_full_counter_does_not_rewrite_the_card_file(card: Card, card_path: Path) -> None:
    before = card_path.stat()
    card.ok(select_df(JPKI), select_ef("0018"), verify(PIN))
    after = card_path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_pin_comparison_is_exact(card: Card) -> None:
    card.ok(select_df(JPKI), select_ef("001B"))
    assert card.sw(verify(PASSWORD.lower())) == "63C4"  # the card does not upper-case
    assert card.sw(verify(PASSWORD + "0")) == "63C3"
    assert card.sw(verify(PASSWORD[:-1])) == "63C2"
    assert card.sw(verify(PASSWORD)) == "9000"


@pytest.mark.parametrize("apdu", ["0020008000", "00200080" + "11" + "31" * 17, "002000800431323334"[:-2]])
def test_verify_with_a_bad_length_is_6700_and_uses_no_try(card: Card, card_path: Path, apdu: str) -> None:
    assert card.sw(select_df(JPKI), select_ef("0018"), apdu) == "6700"
    assert card.sw("00200080") == "63C3"
    assert tries_on_disk(card_path) == 3


def test_verify_without_a_pin_ef_selected(card: Card) -> None:
    assert card.sw(select_df(JPKI), "00200080") == "6986"
    assert card.sw(select_ef("000A"), "00200080") == "6A88"


def test_verify_by_short_ef_id(card: Card) -> None:
    assert card.sw(select_df(JPKI), "00200098") == "63C3"
    assert card.sw("00200098" + verify(PIN)[8:]) == "9000"
    assert card.ok(select_ef("0017")) == b""


def test_verified_state_survives_ef_selection_and_reselecting_the_df(card: Card) -> None:
    card.ok(select_df(JPKI), select_ef("001B"), verify(PASSWORD))
    card.ok(select_ef("000A"), select_ef("0001"), "00B0000004")
    card.ok(select_df(KENHOJO), select_df(JPKI), select_ef("0001"), "00B0000004")


def test_clear_on_reselect_drops_the_verified_state(card_path: Path) -> None:
    card = Card(card_path, clear_on_reselect=True)
    card.ok(select_df(JPKI), select_ef("001B"), verify(PASSWORD), select_ef("0001"), "00B0000004")
    assert card.sw(select_df(JPKI), select_ef("0001"), "00B0000004") == "6982"


@pytest.mark.parametrize("cycle", ["reset", "power"])
def test_power_cycle_clears_the_verified_state(card: Card, cycle: str) -> None:
    card.ok(select_df(JPKI), select_ef("001B"), verify(PASSWORD), select_ef("0001"), "00B0000004")
    if cycle == "reset":
        assert card.card.reset() == card.card.atr
    else:
        card.card.power_off()
        assert card.card.power_on() == card.card.atr
    assert card.sw(select_df(JPKI), select_ef("0001"), "00B0000004") == "6982"


def test_a_failed_verify_drops_an_earlier_success(card: Card) -> None:
    card.ok(select_df(JPKI), select_ef("001B"), verify(PASSWORD))
    assert card.sw(verify("WRONG1")) == "63C4"
    assert card.sw(select_ef("0001"), "00B0000004") == "6982"


def test_pins_are_per_application(card: Card) -> None:
    card.ok(select_df(KENHOJO), select_ef("0011"), verify(PIN))
    assert card.sw(select_df(JPKI), select_ef("0018"), "00200080") == "63C3"
    assert card.sw(select_df(KENHOJO), select_ef("0011"), verify("0000")) == "63C2"
    assert card.sw(select_df(JPKI), select_ef("0018"), "00200080") == "63C3"


def test_pin_status_answers_63cx_for_every_key_myna_queries(card: Card) -> None:
    """`myna pin status`: text AP 0011/0014/0015, visual AP 0013/0012, JPKI 0018/001B."""
    queries = [
        ("D3921000310001010408", ["0011", "0014", "0015"]),
        ("D3921000310001010402", ["0013", "0012"]),
        (JPKI, ["0018", "001B"]),
    ]
    for aid, fids in queries:
        card.ok(select_df(aid))
        for fid in fids:
            sw = card.sw(select_ef(fid), "00200080")
            assert sw.startswith("63C"), f"{aid}/{fid} -> {sw}"


def test_shogo_a_is_the_my_number_and_its_counter_is_kept_on_disk(card: Card, card_path: Path) -> None:
    card.ok(select_df(KENHOJO), select_ef("0014"))
    assert card.sw(verify("000000000000")) == "63C9"
    assert CardFile.load(card_path).pins["kenhojo.shogo_a"].tries_left == 9
    assert card.sw(verify("123456789018")) == "9000"
    assert CardFile.load(card_path).pins["kenhojo.shogo_a"].tries_left == 10


def test_blocked_key_of_the_text_ap_answers_63c0_and_6984(card: Card) -> None:
    assert card.sw(select_df(KENHOJO), select_ef("0012"), "00200080") == "63C0"
    assert card.sw(verify(PIN)) == "6984"


def test_secrets_the_card_file_lacks_cannot_be_verified(card: Card) -> None:
    assert card.sw(select_df(KENHOJO), select_ef("0015"), "00200080") == "63CA"
    assert card.sw(verify("12345678901234")) == "6A88"
    assert card.sw("00200080") == "63CA"


def test_change_pin_needs_a_verify_first_and_persists_the_new_pin(card: Card, card_path: Path) -> None:
    card.ok(select_df(JPKI), select_ef("0018"))
    assert card.sw("002401800435363738") == "6982"
    card.ok(verify(PIN))
    assert card.sw("002401800435363738") == "9000"
    fresh = Card(card_path)
    assert fresh.sw(select_df(JPKI), select_ef("0018"), verify(PIN)) == "63C2"
    assert fresh.sw(verify("5678")) == "9000"
    assert tries_on_disk(card_path) == 3


@pytest.mark.parametrize(
    "ef, new, sw",
    [
        ("0018", "123", "6700"),
        ("0018", "12a4", "6A80"),
        ("001B", "ABC12", "6700"),
        ("001B", "abc123", "6A80"),
    ],
)
def test_change_pin_refuses_secrets_of_the_wrong_form(card: Card, ef: str, new: str, sw: str) -> None:
    secret = PIN if ef == "0018" else PASSWORD
    card.ok(select_df(JPKI), select_ef(ef), verify(secret))
    assert card.sw(f"00240180{len(new):02X}{new.encode().hex()}") == sw
    assert card.sw(verify(secret)) == "9000"


def test_counters_are_shared_by_two_cards_on_one_file(card_path: Path) -> None:
    first, second = Card(card_path), Card(card_path)
    first.ok(select_df(JPKI), select_ef("0018"))
    second.ok(select_df(JPKI), select_ef("0018"))
    assert first.sw(verify("0000")) == "63C2"
    assert second.sw("00200080") == "63C2"
    assert second.sw(verify("0000")) == "63C1"
    assert first.sw(verify("0000")) == "63C0"
    assert second.sw(verify(PIN)) == "6984"


def test_debug_log_shows_headers_and_status_words_but_never_the_pin(
    card: Card, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="cardreader.virtualcard")
    card.ok(select_df(JPKI), select_ef("0018"), verify(PIN))
    logged = caplog.text
    assert "00 20 00 80" in logged and "90 00" in logged
    assert PIN not in logged and PIN.encode().hex() not in logged and "31 32 33 34" not in logged
