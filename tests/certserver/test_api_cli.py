"""The operator commands of the API area: kiosk add|list, municipality stop|resume|list,
audit verify."""

from __future__ import annotations

from pathlib import Path

import api_support
import pytest
from api_support import MUNICIPALITY, Pki, populate
from sqlalchemy import update

from certserver.cli import main
from certserver.db.models.registry import Municipality
from certserver.db.models.transactions import AuditEntry, Kiosk
from certserver.db.session import make_engine, make_session_factory, transaction

pki = api_support.pki  # fixture


@pytest.fixture
def cli_db(db_url: str, pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as session:
        populate(session, pki)
    engine.dispose()
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", db_url)
    return db_url


def _session(url: str):
    return transaction(make_session_factory(make_engine(url)))


def test_kiosk_add_prints_the_credential_once_and_stores_only_its_hash(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kiosk", "add", "--id", "TORIDE-001", "--store", "取手駅前店", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("KIOSK_CREDENTIAL="))
    secret = line.split(":", 1)[1]
    with _session(cli_db) as session:
        kiosk = session.get(Kiosk, "TORIDE-001")
        assert kiosk.store_name == "取手駅前店"
        assert secret not in kiosk.secret_sha256 and len(kiosk.secret_sha256) == 64
    assert main(["kiosk", "list", "--data-dir", str(tmp_path)]) == 0
    assert "TORIDE-001" in capsys.readouterr().out
    assert secret not in capsys.readouterr().out


def test_kiosk_add_refuses_a_taken_or_malformed_id_with_one_line(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kiosk", "add", "--id", "K1", "--store", "s", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["kiosk", "add", "--id", "K1", "--store", "s", "--data-dir", str(tmp_path)]) == 2
    assert main(["kiosk", "add", "--id", "bad id!", "--store", "s", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(x.startswith("certserver: ") for x in err)


def test_municipality_stop_and_resume_switch_issuing_and_are_audited(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["municipality", "stop", MUNICIPALITY, "--reason", "点検", "--data-dir", str(tmp_path)]) == 0
    with _session(cli_db) as session:
        assert session.get(Municipality, MUNICIPALITY).stopped
    assert main(["municipality", "list", "--data-dir", str(tmp_path)]) == 0
    assert "stopped: 点検" in capsys.readouterr().out
    assert main(["municipality", "resume", MUNICIPALITY, "--data-dir", str(tmp_path)]) == 0
    with _session(cli_db) as session:
        assert not session.get(Municipality, MUNICIPALITY).stopped
        actions = [e.action for e in session.query(AuditEntry).order_by(AuditEntry.seq)]
    assert actions == ["municipality_stop", "municipality_resume"]
    assert main(["municipality", "stop", "99999", "--reason", "x", "--data-dir", str(tmp_path)]) == 2


def test_audit_verify_passes_an_intact_log_and_fails_a_tampered_one(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        main(["municipality", "stop", MUNICIPALITY, "--reason", "x", "--data-dir", str(tmp_path)])
    capsys.readouterr()
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 0
    assert "intact: 2 entries" in capsys.readouterr().out
    with _session(cli_db) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(outcome="edited"))
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    assert "BROKEN at entry 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [["serve"], ["kiosk", "list"], ["audit", "verify"], ["municipality", "list"], ["transactions", "summary"]],
)
def test_a_data_dir_without_a_database_is_refused_and_left_untouched(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo"
    assert main([*command, "--data-dir", str(missing)]) != 0
    assert "certserver init" in capsys.readouterr().err
    assert not missing.exists()  # no empty database created by accident


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TABLE audit_entries",
        "ALTER TABLE audit_entries DROP COLUMN prev_hash",
        "UPDATE audit_entries SET at = 'not a time' WHERE seq = 2",  # SQLite keeps any text
    ],
)
def test_audit_verify_reports_a_damaged_audit_table_as_broken(
    damage: str, cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A migrated database whose audit table cannot be read is a broken log (exit 1), not
    a data folder someone forgot to initialise."""
    if "not a time" in damage and not cli_db.startswith("sqlite"):
        pytest.skip("PostgreSQL refuses text in a timestamp column")
    for _ in range(3):
        main(["municipality", "stop", MUNICIPALITY, "--reason", "x", "--data-dir", str(tmp_path)])
    capsys.readouterr()
    engine = make_engine(cli_db)
    with engine.begin() as connection:
        connection.exec_driver_sql(damage)
    engine.dispose()
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "BROKEN" in err and "init" not in err, err


def test_kiosk_add_count_registers_a_batch_at_once_and_writes_the_file_kiosk_load_reads(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--count N --out FILE`: N kiosks in one transaction (not N start-ups of the command),
    their credentials only in FILE (0600), one `id:secret` per line."""
    from kiosk.load import read_credentials

    out = tmp_path / "kiosks.txt"
    assert main(["kiosk", "add", "--count", "50", "--out", str(out), "--data-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    pairs = read_credentials(out)
    assert [kiosk_id for kiosk_id, _ in pairs] == [f"LOAD-{n:03d}" for n in range(1, 51)]
    assert len({secret for _, secret in pairs}) == 50
    assert all(secret not in printed for _, secret in pairs)
    assert out.stat().st_mode & 0o777 == 0o600
    with _session(cli_db) as session:
        assert session.get(Kiosk, "LOAD-050") is not None
    # A batch that meets a taken id registers none of its kiosks.
    assert main(["kiosk", "add", "--count", "60", "--out", str(out), "--data-dir", str(tmp_path)]) == 2
    assert "LOAD-001" in capsys.readouterr().err
    with _session(cli_db) as session:
        assert session.get(Kiosk, "LOAD-051") is None
    assert len(read_credentials(out)) == 50  # the earlier file is left as it was
