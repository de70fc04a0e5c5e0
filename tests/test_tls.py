"""Outbound TLS (idp.net.tls): every client shares one context made once per process, and
that context still refuses a certificate nobody vouches for, over HTTPS and over the mail
relay's STARTTLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.federation.http import new_upstream_client
from idp.net import tls
from idp.net.fetch import PublicOnlyTransport, new_http_client
from idp.notifications import mail
from idp.services.context import Context
from idp.settings import Settings
from tests.conftest import FakeClock, make_settings
from tests.mailbox import Inbox, deliver, running_relay


@dataclass(frozen=True)
class Pki:
    """A certificate authority of the test's own and a server certificate it signed for
    127.0.0.1, as files."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def trusting_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Test CA")).issuer_name(_name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@pytest.fixture
async def https_origin(pki: Pki) -> AsyncIterator[str]:
    """A server on loopback that answers any request over TLS with the test CA's
    certificate."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client refused the certificate
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=pki.server_context())
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.no_database
async def test_upstream_and_app_endpoints_refuse_a_certificate_nobody_vouches_for(
        https_origin: str, pki: Pki) -> None:
    for client in (new_upstream_client(),
                   new_http_client(PublicOnlyTransport(allow_private=True))):
        async with client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(https_origin)
    # The same server is reached once its CA is trusted: the refusal above was the check.
    async with httpx.AsyncClient(verify=pki.trusting_context()) as trusting:
        assert (await trusting.get(https_origin)).json() == {}


@pytest.mark.no_database
def test_clients_are_made_without_loading_the_ca_bundle_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tls.https_context()
    tls.https_context(trust_env=True)
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    for _ in range(3):
        new_upstream_client()
        new_http_client()
        new_http_client(PublicOnlyTransport())
    assert loads == []
    # A context made afresh does load it: the count above would have seen it.
    httpx.create_ssl_context(trust_env=False)
    assert len(loads) == 1


@pytest.fixture
def relay(pki: Pki) -> Iterator[tuple[Inbox, int]]:
    """A relay that takes mail only after STARTTLS, with the test CA's certificate."""
    with running_relay(tls_context=pki.server_context(), require_starttls=True) as relay:
        yield relay


@pytest.fixture
def settings(database_url: str, relay: tuple[Inbox, int]) -> Settings:
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_port=relay[1],
                         smtp_security="starttls", mail_from="Shop <accounts@shop.test>")


async def test_mail_goes_only_to_a_relay_whose_certificate_is_trusted(
        ctx: Context, relay: tuple[Inbox, int], pki: Pki, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = relay[0]
    async with ctx.db.transaction() as session:
        mail.enqueue_mail(session, ctx.settings, "alice@example.com", "new_device_notice",
                          {"brand": "Shop", "device": "Firefox on Linux", "network": None,
                           "at": int(clock()), "reset_link": "https://idp.test/account/forgot",
                           "sessions_link": "https://idp.test/account/sessions"},
                          int(clock()))
    assert await deliver(ctx) == 0
    assert inbox.messages == []  # never sent in the clear after the refused handshake
    monkeypatch.setattr(mail, "smtp_context", pki.trusting_context)
    clock.advance(3600)  # past the retry's back-off
    assert await deliver(ctx) == 1
    assert [m["To"] for m in inbox.messages] == ["alice@example.com"]
