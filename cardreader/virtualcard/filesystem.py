"""The card's file system: applications (DFs, selected by AID) holding elementary files.

Each application module (jpki_ap, kenhojo_ap, other_aps) builds its DF from a CardFile;
`build_filesystem` collects them. EFs are immutable: only PIN records change, and those
live in the card store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cardreader.virtualcard.pins import PinEf
from cardreader.virtualcard.signer import RsaSigner
from konbini_common.cardfile import CardFile


@dataclass(frozen=True)
class BinaryEf:
    """A transparent EF. `read_keys`: PIN EFs of the same DF, any one verified opens it."""

    fid: int
    content: bytes
    read_keys: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RecordEf:
    """A record-structured EF (READ RECORD); records are numbered from 1."""

    fid: int
    records: tuple[bytes, ...]
    read_keys: frozenset[int] = frozenset()


@dataclass(frozen=True)
class KeyEf:
    """A private-key EF, used by COMPUTE DIGITAL SIGNATURE after its PIN EF is verified."""

    fid: int
    signer: RsaSigner
    pin_fid: int


Ef = BinaryEf | RecordEf | KeyEf | PinEf


@dataclass(frozen=True)
class Df:
    """An application: its DF name (AID) and its EFs by file ID."""

    name: str  # for logs and tests only
    aid: bytes
    efs: Mapping[int, Ef] = field(default_factory=dict)


def df(name: str, aid: bytes, *efs: Ef) -> Df:
    return Df(name, aid, {ef.fid: ef for ef in efs})


def build_filesystem(card: CardFile) -> dict[bytes, Df]:
    """Every application of the card, by AID. Raises CardFileError for unusable keys."""
    # Imported here: the application modules import this module's EF types.
    from cardreader.virtualcard import jpki_ap, kenhojo_ap, other_aps

    apps = [jpki_ap.build(card), kenhojo_ap.build(card), *other_aps.build(card)]
    return {app.aid: app for app in apps}


def ber_length(length: int) -> bytes:
    """A BER length in the card's forms: one byte below 128, then 81 xx, then 82 xx xx."""
    if length < 0x80:
        return bytes((length,))
    if length <= 0xFF:
        return bytes((0x81, length))
    if length <= 0xFFFF:
        return b"\x82" + length.to_bytes(2, "big")
    raise ValueError(f"TLV value of {length} bytes is too long for the card")


def tlv(tag: bytes, value: bytes) -> bytes:
    return tag + ber_length(len(value)) + value


def pad(content: bytes, size: int, filler: int = 0xFF) -> bytes:
    """`content` followed by filler up to `size` bytes (never truncated)."""
    return content + bytes((filler,)) * max(0, size - len(content))


def with_offset_table(outer_tag: bytes, table_tag: bytes, items: list[bytes]) -> bytes:
    """`outer_tag { table_tag offsets, items... }`, the layout of the 券面 APs' EF 0002.

    The table holds, 2 bytes each from the start of the file, where each item's tag begins;
    those positions depend on the length of the outer header, so the items come first."""
    table_size = len(table_tag) + 1 + 2 * len(items)
    header = outer_tag + ber_length(table_size + sum(len(item) for item in items))
    offsets = []
    position = len(header) + table_size
    for item in items:
        offsets.append(position.to_bytes(2, "big"))
        position += len(item)
    return header + tlv(table_tag, b"".join(offsets)) + b"".join(items)
