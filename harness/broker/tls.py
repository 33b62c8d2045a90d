"""Throwaway TLS material for tests: a CA and the certificates it signs, as PEM files.

Made with ``cryptography`` in milliseconds, so every test run has its own CA and nothing secret
or long-lived is kept in the repository. Keys are EC P-256: small and fast, and accepted by both
Python's ``ssl`` and the Erlang/OTP 25 ``ssl`` under RabbitMQ 3.10.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("localhost", "127.0.0.1")
# Starting an hour back: a clock a little behind on either side still finds the certificate valid.
_NOT_BEFORE = datetime.timedelta(hours=1)
_LIFETIME = datetime.timedelta(days=1)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``cert_file`` and its private key ``key_file``, signed by the CA in
    ``ca_file`` (what the other side must trust)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self, *, check_hostname: bool = True) -> ssl.SSLContext:
        """A client context that trusts ``ca_file`` only and, by default, checks the host name
        (as the service's does)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.check_hostname = check_hostname
        return context

    def rabbitmq_config(self, port: int) -> str:
        """rabbitmq.conf lines for a TLS listener on 127.0.0.1:``port`` serving these files."""
        return (
            # The address is explicit: RABBITMQ_NODE_IP_ADDRESS binds only the plain listener.
            f"listeners.ssl.default = 127.0.0.1:{port}\n"
            f"ssl_options.cacertfile = {self.ca_file}\n"
            f"ssl_options.certfile = {self.cert_file}\n"
            f"ssl_options.keyfile = {self.key_file}\n"
            # A client certificate is checked against the CA when one is offered (mutual TLS),
            # not required: by default the service logs in with a password over TLS.
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )


class CertificateAuthority:
    """A self-signed CA whose key stays in memory; ``issue`` writes certificates it signs.

    ``CertificateAuthority(folder)`` writes ``<slug>-ca.pem`` into ``folder`` at once.
    """

    def __init__(self, folder: Path, name: str = "harness test CA") -> None:
        self.folder = folder
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = self._key.public_key()
        self.certificate = (
            _builder(subject, subject, public)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.cert_file = folder / f"{_slug(name)}-ca.pem"
        self.cert_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, hosts: Sequence[str] = LOCAL_HOSTS, *, client: bool = False
    ) -> TlsFiles:
        """A certificate for ``hosts`` (DNS names or IP addresses, all in the SAN), for a server
        or, with ``client``, for a client; written as ``<name>.pem`` and ``<name>.key``."""
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else name)])
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = (
            _builder(subject, self.certificate.subject, public)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        cert_file = self.folder / f"{_slug(name)}.pem"
        key_file = self.folder / f"{_slug(name)}.key"
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.touch(mode=0o600)  # private from the first byte; the node runs as this user
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return TlsFiles(ca_file=self.cert_file, cert_file=cert_file, key_file=key_file)


def server_files(folder: Path, hosts: Sequence[str] = LOCAL_HOSTS) -> TlsFiles:
    """A new CA and a server certificate for ``hosts`` signed by it, in ``folder``."""
    return CertificateAuthority(folder).issue("server", hosts)


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _NOT_BEFORE)
        .not_valid_after(now + _LIFETIME)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "cert"
