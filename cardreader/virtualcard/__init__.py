"""The virtual My Number card (マイナンバーカード): its applications and files, its durable PIN
state, and the bridge that puts it into pcscd's vpcd reader.

    card = VirtualCard("card.json")
    card.process(bytes.fromhex("00A4040C0AD392F000260100000001"))  # -> b"\\x90\\x00"
    with VpcdBridge(card, port=35963):
        ...  # PC/SC clients see the card in "Virtual PCD 00 00"
"""

from cardreader.virtualcard.card import VirtualCard
from cardreader.virtualcard.vpcd import VpcdBridge

__all__ = ["VirtualCard", "VpcdBridge"]
