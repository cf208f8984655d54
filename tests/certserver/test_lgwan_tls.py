"""The LGWAN link's mutual TLS: a municipality's certificate server answers only the J-LIS
centre, and the centre talks only to servers whose certificate comes from the municipality
CA. The handshakes run against a real uvicorn with TLS on 127.0.0.1, with a real httpx
client, or between the module's own contexts over a socket pair."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shutil
import socket
import ssl
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from api_support import LiveServer
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from certserver.lgwan.tls import (
    LgwanTlsError,
    TlsFiles,
    centre_client_files,
    client_ssl_context,
    make_lgwan_pki,
    server_files,
    server_ssl_context,
    uvicorn_ssl_options,
)

_TIMEOUT = httpx.Timeout(5.0)


class TlsLiveServer(LiveServer):
    """A tiny app answering "ok" on the tests' live server with mutual TLS (`files`): a real
    uvicorn on 127.0.0.1. `answered` counts the requests the app saw."""

    def __init__(self, files: TlsFiles) -> None:
        self.answered = 0

        async def ok(request: Request) -> PlainTextResponse:
            self.answered += 1
            return PlainTextResponse("ok")

        super().__init__(Starlette(routes=[Route("/", ok)]), tls=files)

    def url_at(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}/"


def _serve(files: TlsFiles) -> TlsLiveServer:
    return TlsLiveServer(files)


def _get(url: str, verify: ssl.SSLContext) -> httpx.Response:
    with httpx.Client(verify=verify, timeout=_TIMEOUT) as client:
        return client.get(url)


def _assert_refused(server: TlsLiveServer, verify: ssl.SSLContext) -> None:
    """The request fails in the handshake: no response, and the app never sees it. (uvicorn's
    asyncio TLS closes the connection without an alert, so httpx cannot say why; the test
    of server_ssl_context below shows the reasons.)"""
    answered = server.answered
    with pytest.raises(httpx.TransportError):
        response = _get(server.url_at(), verify)
        pytest.fail(f"the request was answered: {response.status_code} {response.text!r}")
    assert server.answered == answered


def _server_handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLError | None:
    """One TLS handshake between the two contexts over a socket pair (the server side in a
    thread): the server's error, or None when it accepted the client."""
    server_end, client_end = socket.socketpair()
    server_end.settimeout(5)
    client_end.settimeout(5)
    outcome: list[ssl.SSLError | None] = []

    def accept() -> None:
        try:
            with server.wrap_socket(server_end, server_side=True) as tls:
                tls.sendall(b"ok")
            outcome.append(None)
        except ssl.SSLError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=accept, name="lgwan-handshake", daemon=True)
    thread.start()
    with contextlib.suppress(OSError), client.wrap_socket(client_end, server_hostname="127.0.0.1") as tls:
        tls.recv(2)
    thread.join(timeout=10)
    assert outcome, "the server side did not finish its handshake"
    return outcome[0]


@pytest.fixture(scope="module")
def lgwan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test PKI in <tmp>/pki, and beside it a second one made separately (<tmp>/other/pki):
    same names, other CAs."""
    root = tmp_path_factory.mktemp("lgwan")
    make_lgwan_pki(root / "pki", servers=["08217", "cloud-a"])
    make_lgwan_pki(root / "other" / "pki", servers=["08217"])
    return root / "pki"


@pytest.fixture(scope="module")
def municipality_server(lgwan: Path) -> Iterator[TlsLiveServer]:
    with _serve(server_files(lgwan, "08217")) as server:
        yield server


def test_the_centre_gets_an_answer_from_a_municipality_server(lgwan: Path, municipality_server: TlsLiveServer) -> None:
    context = client_ssl_context(centre_client_files(lgwan))
    for host in ("127.0.0.1", "localhost"):
        response = _get(municipality_server.url_at(host), context)
        assert (response.status_code, response.text) == (200, "ok")


def _no_certificate(lgwan: Path) -> ssl.SSLContext:
    # It trusts the server, so the missing client certificate is the only fault.
    return ssl.create_default_context(cafile=lgwan / "municipality-ca.pem")


def _other_municipality(lgwan: Path) -> ssl.SSLContext:
    cloud = server_files(lgwan, "cloud-a")
    return client_ssl_context(TlsFiles(cert=cloud.cert, key=cloud.key, trust=lgwan / "municipality-ca.pem"))


def _other_centre(lgwan: Path) -> ssl.SSLContext:
    """A proper client certificate, but from another PKI's centre CA."""
    other = centre_client_files(lgwan.parent / "other" / "pki")
    return client_ssl_context(TlsFiles(cert=other.cert, key=other.key, trust=lgwan / "municipality-ca.pem"))


def test_a_client_without_a_certificate_is_refused(lgwan: Path, municipality_server: TlsLiveServer) -> None:
    _assert_refused(municipality_server, _no_certificate(lgwan))


def test_another_municipality_servers_certificate_is_refused_as_a_client(
    lgwan: Path, municipality_server: TlsLiveServer
) -> None:
    _assert_refused(municipality_server, _other_municipality(lgwan))


def test_a_client_certificate_from_another_centre_ca_is_refused(
    lgwan: Path, municipality_server: TlsLiveServer
) -> None:
    _assert_refused(municipality_server, _other_centre(lgwan))


@pytest.mark.parametrize(
    "client, reason",
    [
        (_no_certificate, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        (_other_municipality, "CERTIFICATE_VERIFY_FAILED"),
        (_other_centre, "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_the_server_context_refuses_every_client_but_the_centre(
    lgwan: Path, client: Callable[[Path], ssl.SSLContext], reason: str
) -> None:
    server = server_ssl_context(server_files(lgwan, "08217"))
    assert _server_handshake(server, client_ssl_context(centre_client_files(lgwan))) is None
    refusal = _server_handshake(server, client(lgwan))
    assert refusal is not None and refusal.reason == reason


def test_the_centre_refuses_a_server_not_from_its_municipality_ca(lgwan: Path) -> None:
    # The stranger would accept the centre (it trusts our centre CA): only its own
    # certificate, from another PKI's municipality CA, is wrong.
    other = server_files(lgwan.parent / "other" / "pki", "08217")
    stranger = TlsFiles(cert=other.cert, key=other.key, trust=lgwan / "centre-ca.pem")
    with _serve(stranger) as server, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(server.url_at(), client_ssl_context(centre_client_files(lgwan)))
    assert server.answered == 0


def test_the_centre_checks_the_server_host_name(lgwan: Path, municipality_server: TlsLiveServer) -> None:
    """A server certificate from the right CA, reached under a name it does not carry, is refused."""
    context = client_ssl_context(centre_client_files(lgwan))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    address = ("127.0.0.1", municipality_server.port)
    with socket.create_connection(address, timeout=5) as raw:
        context.wrap_socket(raw, server_hostname="localhost").close()
    with (
        socket.create_connection(address, timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)hostname mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="cert.other-town.lgwan.test")


def test_the_server_context_requires_a_centre_certificate(lgwan: Path) -> None:
    context = server_ssl_context(server_files(lgwan, "08217"))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert uvicorn_ssl_options(server_files(lgwan, "08217"))["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_certificates_carry_their_roles(tmp_path: Path) -> None:
    make_lgwan_pki(tmp_path, servers=["08217"], hosts=["cert.08217.lgwan.test", "10.0.0.7"])
    centre_ca, municipality_ca = _cert(tmp_path / "centre-ca.pem"), _cert(tmp_path / "municipality-ca.pem")
    centre, server = _cert(tmp_path / "centre.pem"), _cert(tmp_path / "servers" / "08217.pem")
    for ca in (centre_ca, municipality_ca):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    for leaf, ca, usage in (
        (centre, centre_ca, ExtendedKeyUsageOID.CLIENT_AUTH),
        (server, municipality_ca, ExtendedKeyUsageOID.SERVER_AUTH),
    ):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [usage]
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert centre.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "J-LIS centre (test)"
    assert (
        server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "LGWAN municipality server 08217 (test)"
    )
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "cert.08217.lgwan.test"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    }


def test_keys_and_folders_are_private(lgwan: Path) -> None:
    for folder in (lgwan, lgwan / "servers"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(lgwan.rglob("*.*"))
    assert {path.name for path in files} >= {"centre-ca.key", "municipality-ca.key", "centre.key", "08217.key"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_rerun_keeps_the_cas_and_certificates_and_adds_a_new_server(tmp_path: Path) -> None:
    make_lgwan_pki(tmp_path, servers=["08217"])
    before = {path.relative_to(tmp_path): path.read_bytes() for path in tmp_path.rglob("*.*")}
    make_lgwan_pki(tmp_path, servers=["08217", "cloud-a"])
    after = {path.relative_to(tmp_path): path.read_bytes() for path in tmp_path.rglob("*.*")}
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {Path("servers/cloud-a.pem"), Path("servers/cloud-a.key")}
    _cert(tmp_path / "servers" / "cloud-a.pem").verify_directly_issued_by(_cert(tmp_path / "municipality-ca.pem"))


def test_a_rerun_with_other_hosts_remakes_only_the_server_certificates(tmp_path: Path) -> None:
    make_lgwan_pki(tmp_path, servers=["08217"])
    before = {path.relative_to(tmp_path): path.read_bytes() for path in tmp_path.rglob("*.*")}
    make_lgwan_pki(tmp_path, servers=["08217"], hosts=["cert.08217.lgwan.test"])
    after = {path.relative_to(tmp_path): path.read_bytes() for path in tmp_path.rglob("*.*")}
    assert {name for name in before if after[name] != before[name]} == {Path("servers/08217.pem")}
    san = _cert(tmp_path / "servers" / "08217.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "cert.08217.lgwan.test" in san.value.get_values_for_type(x509.DNSName)


def test_a_remade_ca_gets_its_certificates_remade(tmp_path: Path) -> None:
    """Certificates of a CA that is gone would be refused: a rerun reissues them (same keys)."""
    make_lgwan_pki(tmp_path, servers=["08217"])
    server_key = (tmp_path / "servers" / "08217.key").read_bytes()
    for name in ("municipality-ca.pem", "municipality-ca.key"):
        (tmp_path / name).unlink()
    make_lgwan_pki(tmp_path, servers=["08217"])
    _cert(tmp_path / "servers" / "08217.pem").verify_directly_issued_by(_cert(tmp_path / "municipality-ca.pem"))
    assert (tmp_path / "servers" / "08217.key").read_bytes() == server_key


def test_a_missing_file_is_named(tmp_path: Path, lgwan: Path) -> None:
    folder = tmp_path / "pki"
    shutil.copytree(lgwan, folder)
    (folder / "centre.key").unlink()
    with pytest.raises(LgwanTlsError, match=re.escape(f"{folder / 'centre.key'} is missing")):
        centre_client_files(folder)
    with pytest.raises(LgwanTlsError, match=re.escape(f"{folder / 'servers' / 'nagoya.pem'} is missing")):
        server_files(folder, "nagoya")
    (folder / "centre-ca.pem").unlink()
    files = TlsFiles(
        cert=folder / "servers/08217.pem", key=folder / "servers/08217.key", trust=folder / "centre-ca.pem"
    )
    for use in (server_ssl_context, client_ssl_context, uvicorn_ssl_options):
        with pytest.raises(LgwanTlsError, match=re.escape("centre-ca.pem is missing")):
            use(files)


def test_an_unreadable_or_damaged_file_is_named(tmp_path: Path, lgwan: Path) -> None:
    folder = tmp_path / "pki"
    shutil.copytree(lgwan, folder)
    files = server_files(folder, "08217")
    files.key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(LgwanTlsError, match=re.escape("08217.key are damaged or do not match")):
        server_ssl_context(files)
    files.trust.write_bytes(b"no certificate here\n")
    with pytest.raises(LgwanTlsError, match=re.escape("centre-ca.pem holds no usable CA certificate")):
        server_ssl_context(files)
    # A folder where the certificate should be: unreadable even to root, unlike a mode-0 file.
    files.cert.unlink()
    files.cert.mkdir()
    with pytest.raises(LgwanTlsError, match=re.escape(f"cannot read the LGWAN TLS file {files.cert}: Is a directory")):
        server_files(folder, "08217")


def test_bad_names_are_refused_before_any_file_is_written(tmp_path: Path) -> None:
    for servers, hosts in ((["../escape"], ()), (["08217"], ["not a host!"])):
        with pytest.raises(ValueError, match="bad LGWAN"):
            make_lgwan_pki(tmp_path / "pki", servers=servers, hosts=hosts)
    assert not (tmp_path / "pki").exists()
    with pytest.raises(ValueError, match="bad LGWAN server name"):
        server_files(tmp_path, "../08217")
