"""Where the service's keys, serials and ids get their randomness: the system's CSPRNG, or,
inside `seeded(N)`, a generator seeded with N.

`certserver init --demo --seed N` runs inside `seeded(N)` so that two inits with the same N
give identical test CA keys, card keys, certificate serials, card ids and PIN salts (harness
runs compare recorded traces across runs). Keys from a known seed are known to everyone:
TEST ONLY, never for production. The running service never enters `seeded`, and the seed
lives in a context variable of the init call, not in a module-level setting.

Seeded RSA keys come from pycryptodome's `RSA.generate` with the seeded generator as its
`randfunc` (cryptography cannot generate from a seed), loaded into cryptography; EC keys from
`ec.derive_private_key`, Ed25519 keys from 32 seeded bytes.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

T = TypeVar("T")

_SEEDED: ContextVar[random.Random | None] = ContextVar("konbini_seeded_entropy", default=None)

# The order of the P-256 group: a private scalar is drawn from [1, n-1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw every key, serial and id from a generator seeded with `seed` until the block
    ends (this context and the threads it starts with a copied context only)."""
    # A string seed is hashed (SHA-512) by random.Random: seeds 1 and 2 share no state.
    token = _SEEDED.set(random.Random(f"konbini-kiosk demo seed {seed}"))
    try:
        yield
    finally:
        _SEEDED.reset(token)


def is_seeded() -> bool:
    return _SEEDED.get() is not None


def token_bytes(count: int) -> bytes:
    rng = _SEEDED.get()
    return secrets.token_bytes(count) if rng is None else rng.randbytes(count)


def token_hex(count: int) -> str:
    return token_bytes(count).hex()


def randbits(bits: int) -> int:
    rng = _SEEDED.get()
    return secrets.randbits(bits) if rng is None else rng.getrandbits(bits)


def choice(options: Sequence[T]) -> T:
    rng = _SEEDED.get()
    return secrets.choice(options) if rng is None else rng.choice(options)


def rsa_key(key_size: int, public_exponent: int) -> rsa.RSAPrivateKey:
    """A new RSA key. Raises ImportError when seeded and pycryptodome is missing."""
    rng = _SEEDED.get()
    if rng is None:
        return rsa.generate_private_key(public_exponent=public_exponent, key_size=key_size)
    from Crypto.PublicKey import RSA

    der = RSA.generate(key_size, randfunc=rng.randbytes, e=public_exponent).export_key(format="DER", pkcs=8)
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def ec_p256_key() -> ec.EllipticCurvePrivateKey:
    rng = _SEEDED.get()
    if rng is None:
        return ec.generate_private_key(ec.SECP256R1())
    return ec.derive_private_key(rng.randrange(1, _P256_ORDER), ec.SECP256R1())


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    rng = _SEEDED.get()
    if rng is None:
        return ed25519.Ed25519PrivateKey.generate()
    return ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
