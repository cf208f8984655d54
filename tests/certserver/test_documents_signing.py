"""Municipality signing material: made once, private keys private, certified by the document CA."""

from __future__ import annotations

import stat
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certserver.documents.errors import SignerNotFoundError
from certserver.documents.signing import PADES_KEY, QR_KEY, SignerStore
from certserver.pki.ca import CaBundle
from konbini_testkit import certificate_samples as samples


@pytest.fixture
def ca(tmp_path: Path) -> CaBundle:
    return CaBundle.create(tmp_path / "ca")


def certify_with(ca: CaBundle, code: str = "08217"):
    return partial(ca.issue_document_signing_certificate, municipality_code=code, municipality_name="取手市")


def test_keys_are_created_once_and_readable_only_by_the_owner(tmp_path: Path, ca: CaBundle) -> None:
    store = SignerStore.open(tmp_path / "ca")
    store.ensure_signer("08217", "取手市", certify_with(ca), chain=(ca.document_ca.cert,))
    folder = tmp_path / "ca" / "documents" / "08217"
    for name in (PADES_KEY, QR_KEY):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    before = (folder / PADES_KEY).read_bytes()
    store.ensure_signer("08217", "取手市", certify_with(ca))  # again: nothing changes
    assert (folder / PADES_KEY).read_bytes() == before
    assert store.municipality_codes() == ["08217"]


def test_the_signer_is_certified_by_the_document_ca(tmp_path: Path, ca: CaBundle) -> None:
    store = SignerStore.open(tmp_path / "ca")
    store.ensure_signer("08217", "取手市", certify_with(ca), chain=(ca.document_ca.cert,))
    signer = SignerStore.open(tmp_path / "ca").signer("08217")
    assert signer.pades_certificate.issuer == ca.document_ca.cert.subject
    assert signer.pades_certificate.public_key() == signer.pades_key.public_key()
    assert isinstance(signer.pades_key.curve, ec.SECP256R1)
    assert signer.chain == (ca.document_ca.cert,)


def test_a_certificate_for_another_key_is_refused(tmp_path: Path, ca: CaBundle) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    store = SignerStore.open(tmp_path / "ca")
    with pytest.raises(ValueError):
        store.ensure_signer("08217", "取手市", lambda _key: certify_with(ca)(other_key))
    assert not store.has_signer("08217")


def test_a_missing_signer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SignerNotFoundError) as missing:
        SignerStore.open(tmp_path / "ca").signer("08217")
    assert missing.value.code == "signer_missing"


@pytest.mark.parametrize("code", ["8217", "08217/../x", "０８２１７", "08217\n"])
def test_malformed_municipality_codes_are_refused(tmp_path: Path, code: str) -> None:
    with pytest.raises(ValueError):
        SignerStore.open(tmp_path / "ca").directory(code)


def test_the_demo_signers_match_what_init_makes(tmp_path: Path) -> None:
    store = samples.demo_signers(tmp_path / "ca")
    assert store.has_signer(samples.ISSUER.code)
    assert (tmp_path / "ca" / "document-ca.cert.pem").is_file()


def test_documents_verify_without_a_stored_chain(tmp_path: Path, ca: CaBundle) -> None:
    from certserver.documents.service import DocumentService
    from certserver.documents.verification import TrustStore, verify_pdf

    store = SignerStore.open(tmp_path / "ca")
    store.ensure_signer("08217", "取手市", certify_with(ca))  # no chain: the anchor suffices
    document = DocumentService(store).render(samples.inkan())
    assert verify_pdf(document.pdf, TrustStore.from_ca_dir(tmp_path / "ca")).valid
