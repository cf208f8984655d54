"""100,000 random and mutated command APDUs: the card always answers with a status word,
never faults, and its card file stays loadable with sane counters."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cardreader.virtualcard import VirtualCard
from konbini_common.cardfile import CardFile
from konbini_testkit.cards import PASSWORD, PIN, make_card

COMMANDS = 100_000
SEED = 20261126

AIDS = [
    bytes.fromhex(a)
    for a in (
        "D392F000260100000001",
        "D3921000310001010408",
        "D3921000310001010402",
        "D3921000310001010100",
        "D3921000310001010401",
        "A0000001510000",
        "A000000308000010",
        "D392F0002601",
    )
]
FIDS = [
    0x0001,
    0x0002,
    0x0006,
    0x0008,
    0x000A,
    0x000B,
    0x0010,
    0x0011,
    0x0012,
    0x0013,
    0x0014,
    0x0015,
    0x0017,
    0x0018,
    0x001A,
    0x001B,
    0x001C,
    0x0003,
    0x0004,
    0x0005,
    0x3F00,
    0xFFFF,
]
KNOWN_SW1 = {0x90, 0x63, 0x65, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6D, 0x6E}


def well_formed(rng: random.Random) -> bytes:
    """A command of a kind the card knows, with random parameters."""
    kind = rng.randrange(9)
    if kind == 0:
        aid = rng.choice(AIDS)
        return bytes((0x00, 0xA4, 0x04, rng.choice((0x0C, 0x0C, 0x00)), len(aid))) + aid
    if kind == 1:
        return bytes((0x00, 0xA4, 0x02, 0x0C, 2)) + rng.choice(FIDS).to_bytes(2, "big")
    if kind == 2:
        offset = rng.choice((0, rng.randrange(0x8000), rng.randrange(2048)))
        return bytes((0x00, 0xB0, offset >> 8, offset & 0xFF, rng.randrange(256)))
    if kind == 3:
        secret = rng.choice(
            (PIN.encode(), PASSWORD.encode(), b"0000", b"123456789018", rng.randbytes(rng.randrange(18)))
        )
        p2 = rng.choice((0x80, 0x80, 0x98, 0x9B, 0x91, 0x00))
        return bytes((0x00, 0x20, 0x00, p2)) + (bytes((len(secret),)) + secret if secret else b"")
    if kind == 4:
        data = rng.randbytes(rng.randrange(1, 260))[:255]
        return bytes((0x80, 0x2A, rng.randrange(8), rng.choice((0x80, 0x97, 0x9A, 0x00)), len(data))) + data + b"\x00"
    if kind == 5:
        new = rng.choice((b"5678", b"NEWPASS1", rng.randbytes(rng.randrange(1, 17))))
        return bytes((0x00, 0x24, 0x01, 0x80, len(new))) + new
    if kind == 6:
        return bytes((0x00, 0xB2, rng.randrange(4), rng.randrange(256), 0x00))
    if kind == 7:
        return bytes((0x00, 0xCA, rng.randrange(256), rng.randrange(256), 0x00))
    return bytes((0x00, 0x20, 0x00, 0x80))


def mutated(rng: random.Random, apdu: bytes) -> bytes:
    data = bytearray(apdu)
    for _ in range(rng.randrange(1, 4)):
        action = rng.randrange(4)
        if action == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 1 and data:
            del data[rng.randrange(len(data)) :]
        elif action == 2:
            data += rng.randbytes(rng.randrange(1, 8))
        else:
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
    return bytes(data)


def command(rng: random.Random) -> bytes:
    choice = rng.random()
    if choice < 0.6:
        return well_formed(rng)
    if choice < 0.85:
        return mutated(rng, well_formed(rng))
    return rng.randbytes(rng.randrange(0, 300))


@pytest.mark.slow
def test_random_and_mutated_apdus_never_break_the_card(tmp_path: Path) -> None:
    path = make_card(tmp_path / "card.json")
    card = VirtualCard(path)
    rng = random.Random(SEED)
    seen: dict[int, int] = {}
    for index in range(COMMANDS):
        if index % 5000 == 4999:
            card.reset()
        apdu = command(rng)
        answer = card.process(apdu)
        assert len(answer) >= 2, apdu.hex()
        sw = int.from_bytes(answer[-2:], "big")
        assert answer[-2] in KNOWN_SW1 and sw != 0x6F00, f"{apdu.hex()} -> {answer.hex()}"
        assert sw == 0x9000 or len(answer) == 2, f"data with an error status: {apdu.hex()}"
        seen[sw] = seen.get(sw, 0) + 1
    record = CardFile.load(path)
    for name, pin in record.pins.items():
        assert 0 <= pin.tries_left <= pin.max_tries, name
    # The run really exercised the card: reads, PIN failures and blocking, not only 6700s.
    assert seen[0x9000] > 3_000
    assert any(0x63C0 <= sw <= 0x63CF for sw in seen) and 0x6984 in seen and 0x6B00 in seen
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
