"""Every certificate the test CA makes is read by strict X.509 parsers: Go's crypto/x509
(which refuses policy OIDs with arcs beyond 31 bits, "invalid certificate policies") and
asn1crypto; no object identifier anywhere in a certificate has an arc of 2**31 or more.

Go's check compiles a small stdlib-only program at test time (no network). Without a Go
toolchain it skips, unless KONBINI_REQUIRE_GO=1 (set by scripts/test.sh after setup.sh
installed golang-go), when it fails.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pki_support import ca_bundle  # noqa: F401 - fixture

from certserver.pki.ca import CaBundle
from certserver.pki.issuance import issue_card_credentials
from certserver.pki.profiles import CardHolder

ISSUED_AT = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
HOLDER = CardHolder(name="取手　太郎", birth_date=dt.date(1980, 2, 17), sex="1", address="茨城県取手市寺田５１３９番地")

_GO_PARSER = """package main

import (
\t"crypto/x509"
\t"fmt"
\t"os"
)

// Parses each DER file named on the command line; prints one verdict line per file.
func main() {
\tfailed := false
\tfor _, path := range os.Args[1:] {
\t\tder, err := os.ReadFile(path)
\t\tif err == nil {
\t\t\t_, err = x509.ParseCertificate(der)
\t\t}
\t\tif err != nil {
\t\t\tfailed = true
\t\t\tfmt.Printf("REJECTED %s: %v\\n", path, err)
\t\t} else {
\t\t\tfmt.Printf("ok %s\\n", path)
\t\t}
\t}
\tif failed {
\t\tos.Exit(1)
\t}
}
"""


@pytest.fixture(scope="module")
def every_certificate(ca_bundle: CaBundle) -> dict[str, x509.Certificate]:
    """Each kind of certificate the CA makes: three roots, a card's two, a document signer's."""
    credentials = issue_card_credentials(ca_bundle, holder=HOLDER, municipality_code="08217", issued_at=ISSUED_AT)
    assert credentials.sign is not None
    signer_key = ec.generate_private_key(ec.SECP256R1())
    document = ca_bundle.issue_document_signing_certificate(signer_key.public_key(), "08217", "取手市", now=ISSUED_AT)
    return {
        "auth-ca": ca_bundle.auth_ca.cert,
        "sign-ca": ca_bundle.sign_ca.cert,
        "document-ca": ca_bundle.document_ca.cert,
        "auth": credentials.auth.certificate,
        "sign": credentials.sign.certificate,
        "document-signer": document,
    }


def _go_toolchain() -> str:
    go = shutil.which("go")
    if go is None:
        why = "no Go toolchain (Debian package golang-go) to run crypto/x509"
        if os.environ.get("KONBINI_REQUIRE_GO") == "1":
            pytest.fail(f"{why} (required because KONBINI_REQUIRE_GO=1)")
        pytest.skip(why)
    return go


def test_go_crypto_x509_parses_every_certificate_the_ca_makes(
    every_certificate: dict[str, x509.Certificate], tmp_path: Path
) -> None:
    go = _go_toolchain()
    (tmp_path / "main.go").write_text(_GO_PARSER)
    env = {
        **os.environ,
        "GOCACHE": str(tmp_path / "cache"),
        "GOPATH": str(tmp_path / "gopath"),
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    subprocess.run(
        [go, "build", "-o", str(tmp_path / "parse"), str(tmp_path / "main.go")],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    paths = []
    for kind, cert in every_certificate.items():
        path = tmp_path / f"{kind}.der"
        path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        paths.append(str(path))
    result = subprocess.run([str(tmp_path / "parse"), *paths], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == len(every_certificate)


def test_asn1crypto_reads_every_extension_of_every_certificate(every_certificate: dict[str, x509.Certificate]) -> None:
    for kind, cert in every_certificate.items():
        parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER), strict=True)
        for extension in parsed["tbs_certificate"]["extensions"]:
            assert extension["extn_value"].parsed is not None, (kind, extension["extn_id"].dotted)
        assert parsed.native["tbs_certificate"]["serial_number"] == cert.serial_number


def _object_identifiers(der: bytes) -> list[str]:
    """Every OBJECT IDENTIFIER in a DER tree (constructed values are walked, OCTET STRINGs that
    wrap extensions are opened)."""
    found: list[str] = []
    _walk(der, found)
    return found


def _walk(data: bytes, found: list[str]) -> None:
    offset = 0
    while offset < len(data):
        tag = data[offset]
        length = data[offset + 1]
        header = 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
            header += count
        body = data[offset + header : offset + header + length]
        if tag == 0x06:
            found.append(_decode_oid(body))
        elif tag & 0x20:
            _walk(body, found)
        elif tag == 0x04 and body[:1] == b"\x30":
            _walk(body, found)  # an extension's value
        offset += header + length


def _decode_oid(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def test_no_object_identifier_arc_needs_more_than_31_bits(every_certificate: dict[str, x509.Certificate]) -> None:
    for kind, cert in every_certificate.items():
        oids = _object_identifiers(cert.public_bytes(serialization.Encoding.DER))
        assert "2.5.29.32" in oids or kind.endswith("-ca"), kind  # certificatePolicies was reached
        too_big = [oid for oid in oids if any(int(arc) >= 2**31 for arc in oid.split("."))]
        assert too_big == [], (kind, too_big)
