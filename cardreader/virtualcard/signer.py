"""The card's RSA private-key operation for COMPUTE DIGITAL SIGNATURE (80 2A, jpki.md §5).

Scheme 00 — the one every client uses — pads the data *as given* (PKCS#1 v1.5 type 1) and
applies the private key; no library call does exactly that, so it is done here with the
key's CRT numbers (cached at load) and RSA blinding, and each result is checked with the
public exponent before it leaves the card. The other schemes map onto pyca/cryptography.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from konbini_common.cardfile import CardFileError

# DER DigestInfo headers (RFC 8017 §9.2 note 1). When scheme 00's data is exactly one of
# these plus a digest, OpenSSL computes the same (deterministic) signature ~8x faster.
_DIGEST_INFO_HEADERS: tuple[tuple[bytes, hashes.HashAlgorithm], ...] = (
    (bytes.fromhex("3031300d060960864801650304020105000420"), hashes.SHA256()),
    (bytes.fromhex("3021300906052b0e03021a05000414"), hashes.SHA1()),
    (bytes.fromhex("3041300d060960864801650304020205000430"), hashes.SHA384()),
    (bytes.fromhex("3051300d060960864801650304020305000440"), hashes.SHA512()),
    (bytes.fromhex("302d300d06096086480165030402040500041c"), hashes.SHA224()),
)


class SignInputError(Exception):
    """Data of the wrong length for the scheme (the card answers 67 00)."""


class UnknownSchemeError(Exception):
    """A P1 that names no signature scheme (the card answers 6A 86)."""


class RsaSigner:
    """An RSA private key as the card's key EF (0017 / 001A) holds it."""

    def __init__(self, pem: bytes) -> None:
        """Raises CardFileError if `pem` is not an unencrypted RSA private key."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise CardFileError("card file holds an unreadable private key") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CardFileError("card file holds a private key that is not RSA")
        self._key = key
        numbers = key.private_numbers()
        self._n = numbers.public_numbers.n
        self._e = numbers.public_numbers.e
        self._p, self._q = numbers.p, numbers.q
        self._dp, self._dq, self._qinv = numbers.dmp1, numbers.dmq1, numbers.iqmp
        self.size = (self._n.bit_length() + 7) // 8

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def sign(self, scheme: int, data: bytes) -> bytes:
        """Sign by the P1 scheme of jpki.md §5. Raises SignInputError, UnknownSchemeError."""
        if scheme == 0x00:
            for header, algorithm in _DIGEST_INFO_HEADERS:
                if len(data) == len(header) + algorithm.digest_size and data.startswith(header):
                    digest = data[len(header) :]
                    return self._key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algorithm))
            return self._pkcs1_type1(data, limit=self.size - 11)
        if scheme == 0x01:
            _check_length(data, 1, 255)
            return self._pkcs1_type1(hashlib.sha256(data).digest(), limit=32)
        if scheme == 0x02:
            _check_length(data, 32, 32)
            return self._key.sign(data, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        if scheme == 0x03:
            _check_length(data, 1, 255)
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if scheme == 0x04:
            _check_length(data, 32, 32)
            return self._key.sign(data, _pss(), utils.Prehashed(hashes.SHA256()))
        if scheme == 0x05:
            _check_length(data, 1, 255)
            return self._key.sign(data, _pss(), hashes.SHA256())
        raise UnknownSchemeError(f"no signature scheme {scheme:02X}")

    def _pkcs1_type1(self, data: bytes, *, limit: int) -> bytes:
        _check_length(data, 1, limit)
        block = b"\x00\x01" + b"\xff" * (self.size - 3 - len(data)) + b"\x00" + data
        return self._private_op(int.from_bytes(block, "big")).to_bytes(self.size, "big")

    def _private_op(self, m: int) -> int:
        n = self._n
        # Blinding: the timing of the exponentiation does not depend on the message.
        r = secrets.randbelow(n - 2) + 2
        blinded = (m * pow(r, self._e, n)) % n
        s1 = pow(blinded, self._dp, self._p)
        s2 = pow(blinded, self._dq, self._q)
        h = (self._qinv * (s1 - s2)) % self._p
        s = ((s2 + h * self._q) * pow(r, -1, n)) % n
        if pow(s, self._e, n) != m:  # a fault must not leak a bad signature (Bellcore attack)
            raise ArithmeticError("RSA private operation failed its check")
        return s


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def _check_length(data: bytes, low: int, high: int) -> None:
    if not low <= len(data) <= high:
        raise SignInputError(f"{len(data)} bytes of input, expected {low}..{high}")
