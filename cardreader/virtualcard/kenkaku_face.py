"""The card face (券面) that 券面事項確認AP EF 0002 carries (jpki.md §7.1):
`FF20{DF21 offsets, DF22 birth date, DF23 sex, DF24 public key, DF25 name image, DF26 address
image, DF27 face photo (JPEG 2000), DF28 signature, DF29 expiry, DF2A security-code image}`.

Everything is generated from the card holder's data: the name and address drawn as black text
on a white background, a grey placeholder silhouette for the photo, a 4-digit security code
derived from the card, and a signature by this project's own TEST ONLY key below (J-LIS signs
real card faces; no real verifier trusts this key). Image sizes are chosen to resemble a card
face scanned at about 300 dpi; the real dimensions are not documented in our sources.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from PIL import Image, ImageDraw, ImageFont

from cardreader.virtualcard.filesystem import tlv, with_offset_table
from konbini_common.cardfile import CardFile

NAME_IMAGE_SIZE = (1024, 192)  # 氏名 (width, height) in pixels; chosen
ADDRESS_IMAGE_SIZE = (1024, 288)  # 住所, up to three lines; chosen
PHOTO_SIZE = (288, 360)  # 顔写真, 4:5 like the printed photo; chosen
SECURITY_CODE_IMAGE_SIZE = (256, 96)  # セキュリティコード; chosen
_FONT_PATHS = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)

# TEST ONLY: the card-face signing key of this emulator (stands for J-LIS's). Public on
# purpose, so that anyone can verify a virtual card's DF28 and no one mistakes it for a real one.
TEST_FACE_SIGNER_KEY_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCjMCJM4XRAzQuQ
1ucCOVsrkQfMYukKVxTbysxaR+/qIqUOujBO37kKvWjQUVxfu7eXm0SZCMryLQ1Q
q7N0a21YY8QUdPpkJlo8fpAKgFtlYuOwPCPbQFpyct7gRkDZVS9KO0u3A0SjnKdP
EiVfIhk9BnDA4lqC36lvYIljYJ3ihXlmcfHgQwxA90P//Q5+atCjbG6Cm/AWK8yZ
WixgXUpiN2txJMYAiEnjqLt4/Qrd7oqlcEnDhbuQ3VvYKGl6XRWGoeaX9UtYc3Ov
01AGekZsnL+jPOPD+aja+4TF4xgvadeLuGyzvk/VNP1w+qJqLecJstG8VU6Eime1
knIznz15AgMBAAECggEABmdD/0uM++J34Nb38VvGDrF2EoByl8nnOwEsD+JZARFb
M/bdIKkxegEI8PyyUNzdNUUd1dn1GbfoGPll1SyGecSPbASTkzS4j31hYlIbVAED
gXW4q/isW+eTRI5pKsYHkSR+wfeOPNPPsl/6SK9+OUlsiPsQ1WgYnlLVzUkcJOhr
Ga0giWyk6VK9T11ccFbDNTvyhQP8UcBwoDXqNO2SYhHG31sKlFxuowuqtfGOdcL4
5rd2x4aN44uYRoUatrxvLuFQvcEFG5ewfDkIOJDFBaOPXBG+LUBRzAl6g9JlIUf1
cRxtgjGlH1QkyCMeugYpM0nSssPv9T48hYWStMZbsQKBgQDRQ9E3I5514itqlgRT
nXKqp5H5I2Pq4n1Pvq+Gjg1ETqje1K3Yv+ubrgJaDptAMxbj280IVAvROp9briOG
BKjjfsJozke3hryIzlQpkv1+4ZGHaN9iERIzEy655g2f6Jr7rq6JJBWbB5geQ+oT
hFEC+MyYVjAncCPgcFGPTnTDiQKBgQDHof1AIEKMiw4ii+NSZU+L+8NjS5UdNOZu
88YE6vw18eTJ2En8wRcGb6f5AO8ibK5yhMOSXnUodRQrx5QAtJdMF+zeVHi+YI+m
iZgXsiQvfiTqZLzS/iZ7SEbIh6sRM7ksKrLyXod87AxHotb1V+GfOKEKKsnh3QuA
tkSvC7v+cQKBgBsgDkt2a4DeS0Bqp67q9sUWKX7Azp/QseuXTQtE+IVFKPCRYuN4
pSKt4JIp2Ifu12W7xQzyUAHT9noczW/+xKGQecS6EGPCrEeTbydgbUl4FbQWrPX6
PoCuWN0x68wxi31aPDd8nOxWhKpPpVTYTuPyuhp4+Y7zI0Nha8EGq235AoGAMroR
zRKldmr7O4IKUGyX6v0daATTrik8CKN/BM7lKZv+w99m5Yf3HtaOezJmkXvGVCky
POYtpQsjBgDftdItw9MsiE40pEOLHQlHkXXdxgeqv7i7Vm3oP1ldSyVWLbfT7Moo
0Hd+vBqLAET7lDoxhbDxEtFOnUr62kj2aPh1W7ECgYAeqRKk7+McAA+OphdMEIVq
6TAI200TJe/NFtw8Y1j2JRnCEkLNO9+nSqVXLoY8++A1ZdnfMZZXAWC8dXifH5s6
0AHrIodEHlDg1wkR2cvT5foh4Aedcpe4lLF0iXdWRP4mjB2kHLBkfU+djrFEbuBn
DiOEY7EIo77EQMn164uzXw==
-----END PRIVATE KEY-----
"""


@lru_cache(maxsize=1)
def face_signer_key() -> rsa.RSAPrivateKey:
    """The TEST ONLY card-face signing key (RSA-2048)."""
    key = serialization.load_pem_private_key(TEST_FACE_SIGNER_KEY_PEM, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)  # no Japanese glyphs, but still a valid image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def text_image(lines: list[str], size: tuple[int, int]) -> bytes:
    """Black text on a white background as a 1-bit PNG, lines from the top left."""
    image = Image.new("1", size, 1)
    draw = ImageDraw.Draw(image)
    font_size = size[1] // max(len(lines), 1) * 7 // 10
    for row, line in enumerate(lines):
        draw.text((16, 8 + row * (size[1] // max(len(lines), 1))), line, font=_font(font_size), fill=0)
    return _png(image)


def _address_lines(address: str, per_line: int = 22) -> list[str]:
    return [address[i : i + per_line] for i in range(0, len(address), per_line)][:3] or [""]


@lru_cache(maxsize=1)
def placeholder_photo() -> bytes:
    """A grey head-and-shoulders silhouette on a light background, JPEG 2000 (jpki.md §7.1)."""
    width, height = PHOTO_SIZE
    image = Image.new("L", PHOTO_SIZE, 235)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.3, height * 0.15, width * 0.7, height * 0.55), fill=150)
    draw.ellipse((width * 0.1, height * 0.6, width * 0.9, height * 1.3), fill=150)
    out = io.BytesIO()
    image.save(out, format="JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[40])
    return out.getvalue()


def security_code(card: CardFile) -> str:
    """A 4-digit code fixed for the card (real cards print a random one)."""
    digest = hashlib.sha256(b"security-code" + card.auth_certificate).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 10000:04d}"


def card_face(card: CardFile, expires_on: str) -> bytes:
    """The content of 券面事項確認AP EF 0002 for `card`; `expires_on` YYYYMMDD."""
    data = card.kenhojo
    return _card_face(data.name, data.address, data.birth_date, data.sex, security_code(card), expires_on)


@lru_cache(maxsize=64)
def _card_face(name: str, address: str, birth_date: str, sex: str, code: str, expires_on: str) -> bytes:
    # Cached: drawing and signing take ~60 ms, and a card is built again on every power-up.
    public_key = (
        face_signer_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signed_items = [
        tlv(b"\xdf\x22", birth_date.encode("ascii")),  # 生年月日
        tlv(b"\xdf\x23", sex.encode("ascii")),  # 性別
        tlv(b"\xdf\x24", public_key),  # public key that verifies DF28
        tlv(b"\xdf\x25", text_image([name], NAME_IMAGE_SIZE)),  # 氏名画像
        tlv(b"\xdf\x26", text_image(_address_lines(address), ADDRESS_IMAGE_SIZE)),  # 住所画像
        tlv(b"\xdf\x27", placeholder_photo()),  # 顔写真
    ]
    # The signature covers DF22..DF27 as stored (tags, lengths and values), RSA PKCS#1 v1.5
    # with SHA-256, the scheme of every other signature on the card.
    signature = face_signer_key().sign(b"".join(signed_items), padding.PKCS1v15(), hashes.SHA256())
    return with_offset_table(
        b"\xff\x20",
        b"\xdf\x21",
        [
            *signed_items,
            tlv(b"\xdf\x28", signature),  # 署名
            tlv(b"\xdf\x29", expires_on.encode("ascii")),  # 有効期限
            tlv(b"\xdf\x2a", text_image([code], SECURITY_CODE_IMAGE_SIZE)),  # セキュリティコード
        ],
    )
