"""`certserver card ...` and `certserver ca ...`: what an operator types, what they see, and
one clear line (exit 2, no traceback) for every mistake."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pki_support import Db, add_resident, db, der, external_ca_and_card, sqlite_only  # noqa: F401 - fixtures

from certserver.cli import main
from certserver.db.session import transaction


@pytest.fixture
def data_dir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder with test CAs, over a migrated database (SQLite or PostgreSQL)."""
    monkeypatch.setenv("CERTSERVER_DATABASE_URL", db_url)
    folder = tmp_path / "var"
    assert main(["ca", "init", "--data-dir", str(folder)]) == 0
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _issue(capsys: pytest.CaptureFixture[str], *argv: str, pin: str, password: str) -> tuple[int, str, str]:
    """`certserver card issue`, the card's secrets in the environment (never in argv)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CERTSERVER_CARD_PIN", pin)
        env.setenv("CERTSERVER_CARD_PASSWORD", password)
        return _run(capsys, "card", "issue", *argv)


def _one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("certserver: ") and fragment in lines[0], lines[0]


def test_issue_list_revoke_round_trip(capsys, data_dir: Path, db: Db) -> None:
    with transaction(db.factory) as session:
        add_resident(session)
    capsys.readouterr()
    code, out, _ = _issue(
        capsys, "--data-dir", str(data_dir), "--resident", "toride-0001", pin="1234", password="ABC123"
    )
    assert code == 0
    card = data_dir / "cards" / "toride-0001.card.json"
    assert card.exists() and stat.S_IMODE(card.stat().st_mode) == 0o600
    serials = [line.split()[-1] for line in out.splitlines() if "serial" in line]
    assert len(serials) == 2 and all(len(s) == 16 for s in serials)

    code, out, _ = _run(capsys, "card", "list", "--data-dir", str(data_dir), "--resident", "toride-0001")
    assert code == 0
    rows = out.strip().splitlines()[1:]
    assert [r.split("\t")[:4] for r in rows] == [
        [serials[0], "auth", "toride-0001", "active"],
        [serials[1], "sign", "toride-0001", "active"],
    ]

    code, out, _ = _run(
        capsys, "card", "revoke", "--data-dir", str(data_dir), "--serial", serials[1].lower(), "--reason", "lost"
    )
    assert code == 0 and "revoked 2 certificate(s)" in out
    assert f"serial {serials[0]}" in out and f"serial {serials[1]}" in out
    code, out, _ = _run(capsys, "card", "list", "--data-dir", str(data_dir))
    assert [r.split("\t")[3] for r in out.strip().splitlines()[1:]] == ["revoked (lost)"] * 2

    code, _, err = _run(
        capsys, "card", "revoke", "--data-dir", str(data_dir), "--serial", serials[0], "--reason", "lost"
    )
    assert code == 2
    _one_line_error(err, "already revoked")


@sqlite_only
def test_issue_to_an_unknown_resident_is_one_clear_line(capsys, data_dir: Path) -> None:
    code, _, err = _issue(capsys, "--data-dir", str(data_dir), "--resident", "nobody", pin="1234", password="ABC123")
    assert code == 2
    _one_line_error(err, "no resident with id 'nobody'")
    assert not (data_dir / "cards" / "nobody.card.json").exists()


@pytest.mark.parametrize(
    ("pin", "password", "fragment"),
    [("12345", "ABC123", "PIN must be exactly 4 digits"), ("1234", "short", "6-16 characters")],
)
def test_bad_pin_format_is_refused_before_anything_happens(
    capsys, tmp_path: Path, pin: str, password: str, fragment: str
) -> None:
    # No CA and no database exist: the format check comes first.
    code, _, err = _issue(capsys, "--data-dir", str(tmp_path), "--resident", "x", pin=pin, password=password)
    assert code == 2
    _one_line_error(err, fragment)


def test_missing_ca_says_to_run_init(capsys, tmp_path: Path) -> None:
    code, _, err = _issue(capsys, "--data-dir", str(tmp_path / "var"), "--resident", "x", pin="1234", password="ABC123")
    assert code == 2
    _one_line_error(err, "run `certserver init` first")


def test_missing_database_says_to_run_init_and_creates_nothing(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERTSERVER_DATABASE_URL", raising=False)
    folder = tmp_path / "var"
    assert main(["ca", "init", "--data-dir", str(folder)]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, "card", "list", "--data-dir", str(folder))
    assert code == 2
    _one_line_error(err, "run `certserver init` first")
    assert not (folder / "certserver.db").exists()


@sqlite_only
def test_ca_init_twice_refuses_and_ca_show_prints_fingerprints(capsys, data_dir: Path) -> None:
    code, _, err = _run(capsys, "ca", "init", "--data-dir", str(data_dir))
    assert code == 2
    _one_line_error(err, "refusing to overwrite")
    code, out, _ = _run(capsys, "ca", "show", "--data-dir", str(data_dir))
    assert code == 0
    assert out.count("sha256") == 3 and "JPKI-EMULATOR TEST ONLY" in out
    assert "trusted external CAs (for enrolled real cards): none" in out


def test_enroll_accepts_a_real_card_under_the_ca_the_operator_names(
    capsys,
    data_dir: Path,
    db: Db,
    tmp_path: Path,
) -> None:
    import datetime as dt

    with transaction(db.factory) as session:
        add_resident(session)
    ca_cert, card_cert, _ = external_ca_and_card(dt.datetime.now(dt.UTC))
    (tmp_path / "auth.der").write_bytes(der(card_cert))
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _, stranger, _ = external_ca_and_card(dt.datetime.now(dt.UTC))
    (tmp_path / "stranger.der").write_bytes(der(stranger))
    capsys.readouterr()

    code, _, err = _run(
        capsys,
        "card",
        "enroll",
        "--data-dir",
        str(data_dir),
        "--resident",
        "toride-0001",
        "--cert",
        str(tmp_path / "stranger.der"),
        "--trust-ca",
        str(tmp_path / "ca.pem"),
    )
    assert code == 2
    _one_line_error(err, "not issued by the given CA")

    code, out, _ = _run(
        capsys,
        "card",
        "enroll",
        "--data-dir",
        str(data_dir),
        "--resident",
        "toride-0001",
        "--cert",
        str(tmp_path / "auth.der"),
        "--trust-ca",
        str(tmp_path / "ca.pem"),
    )
    assert code == 0 and "serial 0705D990" in out
    code, out, _ = _run(capsys, "card", "list", "--data-dir", str(data_dir))
    assert "enrolled real card" in out
    code, out, _ = _run(capsys, "ca", "show", "--data-dir", str(data_dir))
    assert "Stand-in external CA" in out

    code, _, err = _run(
        capsys,
        "card",
        "enroll",
        "--data-dir",
        str(data_dir),
        "--resident",
        "toride-0001",
        "--cert",
        str(tmp_path / "missing.der"),
        "--trust-ca",
        str(tmp_path / "ca.pem"),
    )
    assert code == 2
    _one_line_error(err, "cannot read the card certificate")


@sqlite_only
def test_revoke_with_an_unknown_reason_lists_the_known_ones(capsys, data_dir: Path) -> None:
    code, _, err = _run(capsys, "card", "revoke", "--data-dir", str(data_dir), "--serial", "0A", "--reason", "bored")
    assert code == 2
    _one_line_error(err, "known: lost, stolen, moved_out")


def test_the_installed_command_issues_a_card_in_a_fresh_data_folder(tmp_path: Path) -> None:
    """The real entry point as a subprocess, on the SQLite default of a data folder made by
    `certserver init`; errors reach the terminal as one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTSERVER_")}
    folder = tmp_path / "var"
    command = [sys.executable, "-c", "import sys; from certserver.cli import main; sys.exit(main())"]

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *argv, "--data-dir", str(folder)],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    assert run("init").returncode == 0
    failed = run("card", "issue", "--resident", "nobody", "--pin-stdin", stdin="1234\nABC123\n")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == "certserver: no resident with id 'nobody'"


# -- the card's secrets never on the command line --------------------------------------------


def test_issue_reads_the_pin_and_password_from_standard_input(
    capsys, data_dir: Path, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(db.factory) as session:
        add_resident(session)
    monkeypatch.delenv("CERTSERVER_CARD_PIN", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("1234\nABC123\n"))
    code, out, _ = _run(
        capsys, "card", "issue", "--data-dir", str(data_dir), "--resident", "toride-0001", "--pin-stdin"
    )
    assert code == 0 and "issued a TEST ONLY card" in out
    card = (data_dir / "cards" / "toride-0001.card.json").read_text()
    assert '"1234"' not in card and "ABC123" not in card  # verifiers only


def test_issue_without_secrets_and_without_a_terminal_says_where_they_come_from(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CERTSERVER_CARD_PIN", "CERTSERVER_CARD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no prompt, no hang
    code, _, err = _run(capsys, "card", "issue", "--data-dir", str(tmp_path), "--resident", "x")
    assert code == 2
    _one_line_error(err, "set CERTSERVER_CARD_PIN and CERTSERVER_CARD_PASSWORD, or give --pin-stdin")


@pytest.mark.parametrize(
    "secret_flags", [("--pin", "4826", "--password", "QWERTY48"), ("--pin", "4826"), ("--password", "QWERTY48")]
)
def test_a_pin_or_password_on_the_command_line_is_refused_in_a_line_that_does_not_repeat_it(
    tmp_path: Path, secret_flags: tuple[str, ...]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTSERVER_")}
    env |= {"CERTSERVER_CARD_PIN": "1234", "CERTSERVER_CARD_PASSWORD": "ABC123"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from certserver.cli import main; sys.exit(main())",
            "card",
            "issue",
            "--data-dir",
            str(tmp_path),
            "--resident",
            "x",
            *secret_flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert "is refused" in lines[0] and "4826" not in lines[0] and "QWERTY48" not in lines[0]
    assert not (tmp_path / "cards").exists()


@pytest.mark.parametrize("io_encoding", ["utf-8:strict", "utf-8:surrogateescape"])
def test_non_utf8_standard_input_is_one_line(tmp_path: Path, io_encoding: str) -> None:
    """Undecodable bytes on standard input, whichever way Python decodes it: one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTSERVER_")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from certserver.cli import main; sys.exit(main())",
            "card",
            "issue",
            "--data-dir",
            str(tmp_path),
            "--resident",
            "x",
            "--pin-stdin",
        ],
        input=b"\xff\xfe12\n\x80\x81\n",
        capture_output=True,
        env=env | {"PYTHONIOENCODING": io_encoding},
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "cards").exists()
