"""Every file the service keeps (keys, the service clock, the demo card index) is written
the one durable way: a crash or power cut leaves the old or the new file, and the new name
survives because the folder itself is synced after the rename."""

from __future__ import annotations

import datetime as dt
import os
import stat
from functools import partial
from pathlib import Path

import pytest

from certserver.clock import ServiceClock, save_clock
from certserver.demo.cards import IndexEntry, read_index, write_index
from certserver.documents.signing import SignerStore
from certserver.pki.ca import CaBundle


def _synced_folders(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record the folders os.fsync is called on (and still sync them)."""
    synced: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_service_clock_file_is_private_and_its_folder_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced_folders(monkeypatch)
    save_clock(tmp_path, ServiceClock(dt.timedelta(days=-3)))
    assert _private(tmp_path / "service-clock.json")
    assert tmp_path in synced
    assert [p.name for p in tmp_path.iterdir()] == ["service-clock.json"]  # no temporary left


def test_the_demo_card_index_is_private_and_its_folder_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = _synced_folders(monkeypatch)
    entry = IndexEntry("card.json", "toride-0001", "取手　太郎", "4321", "TESTPASS9", "works")
    path = write_index(tmp_path, [entry])
    assert read_index(tmp_path) == [entry] and _private(path)
    assert tmp_path in synced


def test_a_municipality_signing_key_is_private_and_its_folder_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = CaBundle.create(tmp_path / "ca")
    store = SignerStore.open(tmp_path / "signers")
    synced = _synced_folders(monkeypatch)
    store.ensure_signer(
        "08217",
        "取手市",
        partial(ca.issue_document_signing_certificate, municipality_code="08217", municipality_name="取手市"),
    )
    folder = store.directory("08217")
    assert folder in synced
    keys = [p for p in folder.iterdir() if p.name.endswith(".key") or p.name.endswith("key.pem")]
    assert keys and all(_private(p) for p in keys)
