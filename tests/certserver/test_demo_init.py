"""`certserver init [--demo]`: a ready data folder, the demo cards and their index, and no
accidental overwrite."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from certserver.cli import CliError, main
from certserver.cli.init_cmd import initialise
from certserver.config import Settings
from certserver.db.models.pki import CardCertificate
from certserver.db.models.registry import Municipality, Resident, ResidentCard
from certserver.db.session import make_engine, make_session_factory
from certserver.demo.cards import read_index
from certserver.documents.signing import SignerStore
from certserver.services.ordering import RuleViolation, menu_for
from certserver.services.rules.violations import kiosk_facing
from konbini_testkit.postgres import scratch_database

REFUSAL_CODE = re.compile(r"^[a-z_0-9]+$")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo data folder for the read-only checks below (init takes a few seconds)."""
    data_dir = tmp_path_factory.mktemp("demo") / "var"
    assert main(["init", "--demo", "--data-dir", str(data_dir)]) == 0
    return data_dir


def _session(data_dir: Path):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(Settings(data_dir=data_dir).resolved_database_url))()


@pytest.mark.slow
def test_demo_init_prints_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--demo", "--data-dir", str(tmp_path / "var")]) == 0
    out = capsys.readouterr().out
    assert "creating the database" in out and "creating the test CAs" in out
    assert "card toride-0001.json" in out and out.rstrip().splitlines()[-1].startswith("done: 13 residents, 12 cards")


def test_index_lists_every_card_file_with_its_demo_pin(demo_dir: Path) -> None:
    cards_dir = demo_dir / "cards"
    entries = read_index(cards_dir)
    assert len(entries) == 12
    assert {e.file for e in entries} == {p.name for p in cards_dir.glob("toride-*.json")}
    for entry in entries:
        card = json.loads((cards_dir / entry.file).read_text(encoding="utf-8"))
        assert card["kenhojo"]["name"] == entry.name
        assert re.fullmatch(r"[0-9]{4}", entry.pin) and entry.pin not in json.dumps(card)
        assert not re.search(r"[0-9]", card["kenhojo"]["address"])  # full-width digits
    assert stat.S_IMODE((cards_dir / "index.json").stat().st_mode) == 0o600


def test_every_card_is_registered_for_its_resident(demo_dir: Path) -> None:
    with _session(demo_dir) as session:
        for entry in read_index(demo_dir / "cards"):
            held = session.execute(
                select(CardCertificate.municipality_code, ResidentCard.municipality_code)
                .join(ResidentCard, ResidentCard.serial == CardCertificate.serial)
                .where(ResidentCard.resident_id == entry.resident_id)
            ).all()
            assert len(held) in (1, 2), entry.resident_id  # under 15: no signing certificate
            resident = session.get(Resident, entry.resident_id)
            assert resident is not None
            # The JPKI record names the applying municipality: the holder's own.
            assert set(held) == {(resident.municipality_code, resident.municipality_code)}
            card = json.loads((demo_dir / "cards" / entry.file).read_text(encoding="utf-8"))
            assert card["kenhojo"]["my_number"] == resident.my_number


def test_each_cards_expected_outcome_is_what_the_rules_say_now(demo_dir: Path) -> None:
    now = datetime.now(UTC)
    with _session(demo_dir) as session:
        for entry in read_index(demo_dir / "cards"):
            expected = entry.expect.split()[0].rstrip(";")
            if expected == "same_day_move_in" and entry.expect.split()[2] != now.astimezone().date().isoformat():
                continue  # init ran on another JST day than this check: the card works by now
            if REFUSAL_CODE.match(expected) and expected != "issued":
                with pytest.raises(RuleViolation) as caught:
                    menu_for(session, entry.resident_id, now)
                refusal = caught.value
                # What the kiosk receives, and what the operator's card tray may show.
                kiosk_code, _, _ = kiosk_facing(refusal.code, refusal.message_ja, refusal.message_en)
                assert kiosk_code == expected, entry.resident_id
            else:
                assert menu_for(session, entry.resident_id, now).resident_id == entry.resident_id


def test_demo_init_creates_the_document_signers(demo_dir: Path) -> None:
    store = SignerStore.open(demo_dir / "ca")
    with _session(demo_dir) as session:
        codes = session.scalars(select(Municipality.code)).all()
    assert sorted(codes) == ["08217", "08220"]
    assert all(store.has_signer(code) for code in codes)


def test_init_refuses_an_initialised_folder_and_force_starts_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    assert main(["init", "--data-dir", str(data_dir)]) == 0
    ca_key = (data_dir / "ca" / "auth-ca.key.pem").read_bytes()
    capsys.readouterr()
    assert main(["init", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already initialised" in err and "--force" in err
    assert (data_dir / "ca" / "auth-ca.key.pem").read_bytes() == ca_key  # untouched
    assert main(["init", "--force", "--data-dir", str(data_dir)]) == 0
    assert (data_dir / "ca" / "auth-ca.key.pem").read_bytes() != ca_key


def test_init_without_demo_makes_an_empty_registry(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert main(["init", "--data-dir", str(data_dir)]) == 0
    assert (data_dir / "ca" / "auth-ca.cert.pem").is_file()
    assert not (data_dir / "cards" / "index.json").exists()
    with _session(data_dir) as session:
        assert session.scalar(select(func.count()).select_from(Resident)) == 0


def test_a_file_where_a_folder_belongs_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    (data_dir / "ca").write_text("not a folder")
    assert main(["init", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ca (a file where a folder belongs)" in err


def test_a_failure_half_way_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up while the fifth card is written (injected: the failure, not
    the clean-up, is simulated) leaves no database, CA or card behind."""
    import certserver.demo.cards as demo_cards

    real_issue = demo_cards.issue_card
    calls = []

    def issue_until_the_disk_is_full(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real_issue(*args, **kwargs)

    monkeypatch.setattr(demo_cards, "issue_card", issue_until_the_disk_is_full)
    data_dir = tmp_path / "var"
    assert main(["init", "--demo", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("certserver: init failed") and "nothing was kept" in err and len(err.splitlines()) == 1
    assert len(calls) == 5 and not data_dir.exists()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    base = os.environ.get("CERTSERVER_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("KONBINI_REQUIRE_POSTGRES") == "1":
            pytest.fail("CERTSERVER_TEST_POSTGRES_URL is not set")
        pytest.skip("CERTSERVER_TEST_POSTGRES_URL is not set")
    with scratch_database(base, "i_") as url:
        yield url


@pytest.mark.postgres
@pytest.mark.slow
def test_demo_init_on_postgresql_and_force_migrates_down_first(tmp_path: Path, empty_postgres_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "var", database_url=empty_postgres_url)
    lines: list[str] = []
    result = initialise(settings, demo=True, progress=lines.append)
    assert result.residents == 13 and len(result.cards) == 12 and "***" in result.database_url
    with pytest.raises(CliError, match="already initialised"):
        initialise(settings, demo=True, progress=lines.append)
    again = initialise(settings, demo=True, force=True, progress=lines.append)
    assert any(line.startswith("wiped the database") for line in lines)
    engine = make_engine(empty_postgres_url)
    try:
        with make_session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Resident)) == again.residents == 13
            assert session.scalar(select(func.count()).select_from(CardCertificate)) == 23  # 11 adults x 2 + 1
    finally:
        engine.dispose()
