"""個人番号 (My Number) check digits, for synthetic numbers that real software accepts.

The check digit is defined by 行政手続における特定の個人を識別するための番号の利用等に関する法律
施行令 and 総務省令 (検査用数字を算出する算式): with P(n) the n-th of the first eleven digits
counted from the right and Q(n) = n + 1 for n = 1..6, n - 5 for n = 7..11,
check = 11 - (Σ P(n)·Q(n) mod 11), or 0 when the remainder is 0 or 1.
"""

from __future__ import annotations

import random


def check_digit(first_eleven: str) -> int:
    """The check digit of an 11-digit string. Raises ValueError for anything else."""
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise ValueError("expected exactly 11 ASCII digits")
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(digit) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid(number: str) -> bool:
    """True when `number` is 12 ASCII digits whose last one is the right check digit."""
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        return False
    return check_digit(number[:11]) == int(number[11])


def with_check_digit(first_eleven: str) -> str:
    """The 12-digit number made of `first_eleven` and its check digit."""
    return first_eleven + str(check_digit(first_eleven))


def synthetic(rng: random.Random) -> str:
    """A random valid 12-digit number (for demo people only; it may collide with a real
    one by chance, which is why nothing here is ever used outside the emulator)."""
    return with_check_digit(f"{rng.randrange(10**11):011d}")
