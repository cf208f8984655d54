"""The virtual My Number card (マイナンバーカード): its applications and files, its durable PIN
state, and the bridge that puts it into pcscd's vpcd reader.

    card = VirtualCard("card.json")
    card.process(bytes.fromhex("00A4040C0AD392F000260100000001"))  # -> b"\\x90\\x00"
    with VpcdBridge(card, port=35963):
        ...  # PC/SC clients see the card in "Virtual PCD 00 00"
    card.faults.add(ForcedStatus(0x6581, "read-binary"))  # misbehave on purpose (faults.py)
"""

from cardreader.virtualcard.card import VirtualCard
from cardreader.virtualcard.faults import (
    CorruptedByte,
    FaultPlan,
    ForcedStatus,
    LostVerification,
    PulledOut,
    RefusesPowerOn,
    SlowAnswer,
    parse_fault,
)
from cardreader.virtualcard.vpcd import VpcdBridge

__all__ = [
    "CorruptedByte",
    "FaultPlan",
    "ForcedStatus",
    "LostVerification",
    "PulledOut",
    "RefusesPowerOn",
    "SlowAnswer",
    "VirtualCard",
    "VpcdBridge",
    "parse_fault",
]
