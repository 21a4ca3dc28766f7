"""The control plane's keys and certificates: one CA that signs the API server's serving certificate and every
client certificate, and the service-account signing key. Made once per data directory and kept with it, so a
restarted `make run` keeps its kubeconfig and the tokens it issued."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = dt.timedelta(days=3650)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALID_FOR))


class Pki:
    """Files under `directory`: ca.crt/ca.key, the serving pair, client pairs by name, sa.key/sa.pub."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.ca = Pair(directory / "ca.crt", directory / "ca.key")
        self.service_account_key = directory / "sa.key"
        self.service_account_public_key = directory / "sa.pub"

    def ensure(self) -> "Pki":
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.ca.cert.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            name = _name("tmk-cluster-ca")
            cert = (_builder(name, name, key.public_key())
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                 content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .sign(key, hashes.SHA256()))
            _write_key(self.ca.key, key)
            self.ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if not self.service_account_key.exists():
            # RSA: the algorithm every service-account token verifier accepts.
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write_key(self.service_account_key, key)
            self.service_account_public_key.write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return self

    def _issue(self, stem: str, subject: x509.Name, usage, alt_names: list[x509.GeneralName] | None = None) -> Pair:
        pair = Pair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        if pair.cert.exists():
            return pair
        ca_key = serialization.load_pem_private_key(self.ca.key.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (_builder(subject, ca_cert.subject, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        _write_key(pair.key, key)
        pair.cert.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        return pair

    def serving(self) -> Pair:
        """The API server's certificate, for the loopback address and the in-cluster names of its Service."""
        names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                         x509.DNSName("localhost")]
        names += [x509.DNSName(name) for name in ("kubernetes", "kubernetes.default", "kubernetes.default.svc")]
        return self._issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, names)

    def client(self, user: str, group: str | None = None) -> Pair:
        """A client certificate: the API server takes the common name as the user and the organization as a group."""
        stem = "client-" + user.replace(":", "-")
        return self._issue(stem, _name(user, group), ExtendedKeyUsageOID.CLIENT_AUTH)
