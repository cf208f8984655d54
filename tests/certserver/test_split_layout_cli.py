"""`certserver init --demo --split`: one store per role (分散管理), and the commands that go to
the right one by themselves."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from certserver.cli import main

ROLES = ("centre", "jpki", "municipalities")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("split") / "data"
    assert main(["init", "--demo", "--split", "--data-dir", str(folder)]) == 0
    return folder


@pytest.fixture
def folder(template: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(template, copy)
    return copy


def _count(folder: Path, role: str, query: str) -> int:
    with sqlite3.connect(folder / role / "certserver.db") as db:
        return int(db.execute(query).fetchone()[0])


def test_each_store_holds_its_roles_data_and_nothing_else(template: Path) -> None:
    residents = "SELECT count(*) FROM residents"
    cards = "SELECT count(*) FROM card_certificates"
    holders = "SELECT count(*) FROM resident_cards"
    assert (_count(template, "centre", residents), _count(template, "centre", cards)) == (0, 0)
    assert _count(template, "centre", holders) == 0
    assert (_count(template, "jpki", residents), _count(template, "jpki", holders)) == (0, 0)
    assert _count(template, "jpki", cards) >= 20
    assert _count(template, "municipalities", cards) == 0
    assert _count(template, "municipalities", residents) >= 10
    assert _count(template, "municipalities", holders) == _count(template, "jpki", cards)
    assert not (template / "certserver.db").exists()  # no common database


def test_the_stores_and_keys_are_private(template: Path) -> None:
    for role in (*ROLES, "lgwan"):
        assert stat.S_IMODE((template / role).stat().st_mode) == 0o700, role
    for path in [*(template / role / "certserver.db" for role in ROLES), *(template / "lgwan").rglob("*.key")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_card_is_issued_at_the_municipality_through_jpki_and_revoked_at_jpki(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _count(folder, "jpki", "SELECT count(*) FROM card_certificates")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CERTSERVER_CARD_PIN", "1234")
        env.setenv("CERTSERVER_CARD_PASSWORD", "ABC123")
        code = main(["card", "issue", "--resident", "toride-0002", "--data-dir", str(folder), "--force"])
    out = capsys.readouterr().out
    assert code == 0, out
    serial = next(line.split()[-1] for line in out.splitlines() if "auth serial" in line)
    assert _count(folder, "jpki", "SELECT count(*) FROM card_certificates") == before + 2
    held = f"SELECT count(*) FROM resident_cards WHERE serial = '{serial}' AND resident_id = 'toride-0002'"
    assert _count(folder, "municipalities", held) == 1
    assert _count(folder, "centre", "SELECT count(*) FROM card_certificates") == 0

    assert main(["card", "list", "--resident", "toride-0002", "--data-dir", str(folder)]) == 0
    assert serial in capsys.readouterr().out  # the holder comes from the municipality's store
    assert main(["card", "revoke", "--serial", serial, "--reason", "lost", "--data-dir", str(folder)]) == 0
    assert "of the card of toride-0002" in capsys.readouterr().out
    revoked = f"SELECT count(*) FROM card_certificates WHERE serial = '{serial}' AND status = 'revoked'"
    assert _count(folder, "jpki", revoked) == 1


def test_the_municipalitys_switch_is_in_its_own_store_and_each_audit_log_is_verified(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["municipality", "stop", "08217", "--reason", "maintenance", "--data-dir", str(folder)]) == 0
    stopped = "SELECT count(*) FROM municipalities WHERE code = '08217' AND stopped"
    assert _count(folder, "municipalities", stopped) == 1
    capsys.readouterr()
    assert main(["audit", "verify", "--data-dir", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["centre", "municipalities"]
    assert all("intact" in line for line in lines)


def test_init_keeps_a_split_folder_unless_forced_and_force_starts_it_over(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--demo", "--split", "--data-dir", str(folder)]) != 0
    assert "already initialised" in capsys.readouterr().err
    left_over = folder / "municipalities" / "left-over"
    left_over.write_text("from the first init")
    assert main(["init", "--demo", "--split", "--force", "--data-dir", str(folder)]) == 0
    assert not left_over.exists() and all((folder / role / "certserver.db").exists() for role in ROLES)


def test_a_split_layout_is_sqlite_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CERTSERVER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
        assert main(["init", "--split", "--data-dir", str(tmp_path / "pg")]) != 0
    assert "--split" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "pg" / "centre")
