"""`certserver init --demo --seed N`: the same N gives the same world, byte for byte: test CA
keys, card keys and certificates (serials included), card files with their PIN salts,
document signers, and the database's content (timestamps and the data folder's own path
aside). The seed is for init only: without it every key is new."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from certserver.pki import entropy
from certserver.pki.ca import CaBundle

# registry_revision holds a cache token the database's triggers draw at random on every
# registry change: not data, and the running service's to change.
NOT_CONTENT = {"registry_revision"}


def certserver(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from certserver.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, CERTSERVER_DATABASE_URL=""),
        check=False,
    )


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix != ".db" and "-wal" not in path.name and "-shm" not in path.name
    }


def database_content(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, without timestamp columns, with the data folder's path replaced."""
    db = sqlite3.connect(folder / "certserver.db")
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        content: dict[str, list[tuple[object, ...]]] = {}
        for table in tables:
            if table in NOT_CONTENT:
                continue
            columns = [
                row[1]
                for row in db.execute(f'PRAGMA table_info("{table}")')
                if "DATETIME" not in row[2].upper() and "TIMESTAMP" not in row[2].upper()
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = db.execute(f'SELECT {select} FROM "{table}" ORDER BY 1').fetchall()
            content[table] = [
                tuple(v.replace(str(folder), "DATA") if isinstance(v, str) else v for v in row) for row in rows
            ]
        return content
    finally:
        db.close()


def test_two_inits_with_the_same_seed_are_identical_byte_for_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        run = certserver("init", "--demo", "--seed", "7", "--data-dir", str(folder))
        assert run.returncode == 0, run.stderr

    first_files, second_files = files_of(first), files_of(second)
    assert any(name.startswith("cards/") and name.endswith(".json") for name in first_files)
    assert any(name.endswith(".key.pem") for name in first_files)
    assert sorted(first_files) == sorted(second_files)
    differing = [name for name in first_files if first_files[name] != second_files[name]]
    assert differing == [], differing

    first_db, second_db = database_content(first), database_content(second)
    assert first_db["card_certificates"] and first_db["residents"]
    assert first_db == second_db


def test_another_seed_gives_other_keys_and_serials(tmp_path: Path) -> None:
    moment = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)

    def create(seed: int, folder: str) -> CaBundle:
        with entropy.seeded(seed):
            return CaBundle.create(tmp_path / folder, now=moment)

    seven, seven_again, eight = create(7, "a"), create(7, "b"), create(8, "c")
    assert seven.auth_ca.der == seven_again.auth_ca.der
    assert seven.document_ca.der == seven_again.document_ca.der  # ECDSA signed deterministically
    assert seven.auth_ca.cert.serial_number != eight.auth_ca.cert.serial_number
    assert seven.auth_ca.cert.public_key() != eight.auth_ca.cert.public_key()


def test_without_a_seed_every_key_is_new(tmp_path: Path) -> None:
    def auth_key(folder: str) -> bytes:
        bundle = CaBundle.create(tmp_path / folder)
        return bundle.auth_ca.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    assert not entropy.is_seeded()
    assert auth_key("a") != auth_key("b")


def test_a_seed_without_demo_is_refused_in_one_line(tmp_path: Path) -> None:
    run = certserver("init", "--seed", "7", "--data-dir", str(tmp_path / "data"))
    assert run.returncode == 2
    assert "--seed needs --demo" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "data").exists()
