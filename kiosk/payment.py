"""The simulated cash acceptor (硬貨・紙幣投入口): escrow, refund, change.

Cash sits in escrow until the kiosk either collects it (the fee stays in the cash box and
the change comes out) or returns it whole, as a real acceptor does on a cancel.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kiosk.flow import DENOMINATIONS

logger = logging.getLogger(__name__)


class CashError(Exception):
    """A coin or note the acceptor does not take, or a collection that does not add up."""

    title_ja = "このお金は使えません"
    title_en = "This money cannot be used"


@dataclass(frozen=True)
class Settlement:
    fee_yen: int
    paid_yen: int
    change_yen: int


class CashAcceptor:
    """Thread-safe: the UI inserts, the effect runner collects or refunds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._escrow: list[int] = []
        self.cash_box_yen = 0
        self.returned_yen = 0  # total handed back (refunds and change), for the operator

    @property
    def escrow_yen(self) -> int:
        with self._lock:
            return sum(self._escrow)

    def insert(self, amount_yen: int) -> int:
        """Take one coin or note; return the escrow total. Raises CashError for anything
        but 10, 50, 100, 500 or 1000 yen."""
        if amount_yen not in DENOMINATIONS:
            raise CashError(f"{amount_yen} yen is not accepted")
        with self._lock:
            self._escrow.append(amount_yen)
            return sum(self._escrow)

    def refund(self) -> int:
        """Give back everything in escrow; return the amount."""
        with self._lock:
            amount = sum(self._escrow)
            self._escrow.clear()
            self.returned_yen += amount
        if amount:
            logger.info("returned %d yen", amount)
        return amount

    def collect(self, fee_yen: int) -> Settlement:
        """Keep `fee_yen` from escrow and pay out the rest as change. Raises CashError when
        the escrow does not cover the fee (nothing is taken then)."""
        with self._lock:
            paid = sum(self._escrow)
            if fee_yen < 0 or paid < fee_yen:
                raise CashError(f"{paid} yen in escrow does not cover {fee_yen} yen")
            self._escrow.clear()
            self.cash_box_yen += fee_yen
            self.returned_yen += paid - fee_yen
        return Settlement(fee_yen, paid, paid - fee_yen)
