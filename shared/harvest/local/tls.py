"""HTTPS for `harvest serve`: the server's SSL context, reloading its certificate, and a self-signed
certificate for trying it out.

The defaults (`server_context`):
- TLS 1.2 and 1.3 only (SSLv3, TLS 1.0 and 1.1 refused);
- TLS 1.2 cipher suites: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only (forward secrecy,
  AEAD; no RSA key exchange, CBC, RC4, 3DES, SHA-1 MACs, export or anonymous suites); TLS 1.3's
  suites are OpenSSL's (AES-GCM and ChaCha20-Poly1305), which are all AEAD;
- no TLS compression (CRIME), no renegotiation, the server's cipher order;
- ALPN offers HTTP/2 then HTTP/1.1 (the server speaks both).

A reload (`CertificateReloader.reload`, on SIGHUP) reads the new files once, checks them in a
scratch context and only then loads them into the live context, on the server's event loop: every
handshake starts on that loop, so each one sees either the old pair or the new one, and a bad file
leaves the old pair serving. Connections already open keep the certificate they were set up with.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harvest.errors import ConfigError

log = logging.getLogger(__name__)

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"
SELF_SIGNED_DAYS = 365
SELF_SIGNED_RENEW_DAYS = 30  # a self-signed certificate this close to its end is made anew


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    names: tuple[str, ...]  # subject alternative names (DNS names and IP addresses)
    not_after: datetime.datetime
    sha256: str  # fingerprint of the DER certificate, AA:BB:... as browsers show it


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context with the defaults above and the given pair; ConfigError if the pair is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with _snapshot(cert_file, key_file) as (cert, key):
        _load(context, cert, key)
    return context


def certificate_info(cert_file: Path) -> CertificateInfo:
    """The first certificate of a PEM file: its names, end of validity and SHA-256 fingerprint."""
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the TLS certificate {cert_file}: {exc}") from exc
    from cryptography.hazmat.primitives import serialization

    der = certificate.public_bytes(serialization.Encoding.DER)
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(str(name.value) for name in extension.value)
    except x509.ExtensionNotFound:
        names = ()
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        names=names,
        not_after=certificate.not_valid_after_utc,
        sha256=fingerprint(der),
    )


def fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class CertificateReloader:
    """Loads a new certificate and key into a live server context (see the module's docstring).

    `run_on_loop` runs a callable on the server's event loop and waits for it."""

    def __init__(
        self,
        context: ssl.SSLContext,
        cert_file: Path,
        key_file: Path,
        run_on_loop: Callable[[Callable[[], None]], None],
    ) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self._run_on_loop = run_on_loop

    def reload(self) -> CertificateInfo:
        """Load the files again; ConfigError (and the old pair still serving) if they are unusable."""
        with _snapshot(self.cert_file, self.key_file) as (cert, key):
            _load(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key)  # checks the pair, raises if bad
            self._run_on_loop(lambda: self.context.load_cert_chain(cert, key))
            return certificate_info(cert)


@contextmanager
def _snapshot(cert_file: Path, key_file: Path) -> Iterator[tuple[Path, Path]]:
    """Private copies of the pair, so a check and the load that follows see the same bytes even while
    a renewal tool rewrites the files."""
    try:
        cert, key = cert_file.read_bytes(), key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS certificate or key: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="harvest-tls-") as directory:
        cert_copy, key_copy = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert_copy.write_bytes(cert)
        key_copy.touch(mode=0o600)
        key_copy.write_bytes(key)
        yield cert_copy, key_copy


def _load(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"the TLS certificate and key cannot be used together ({exc.reason or exc}): the key must be"
            " the certificate's, unencrypted, both PEM; the certificate file may carry its chain after it"
        ) from exc


# --- a self-signed certificate for trying HTTPS out ---------------------------------------------------


def self_signed_names(host: str) -> list[str]:
    """The names a self-signed certificate covers: this machine's names, loopback, and the listen
    address when it is a specific one."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    if host not in ("", "0.0.0.0", "::"):
        names.append(host)
    return list(dict.fromkeys(name for name in names if name))


def ensure_self_signed(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """`directory`/self-signed.crt and .key: kept across restarts (so trusting it once is enough)
    while it covers `names` and is valid for SELF_SIGNED_RENEW_DAYS more; made anew otherwise."""
    cert_file, key_file = directory / "self-signed.crt", directory / "self-signed.key"
    if cert_file.exists() and key_file.exists():
        info = certificate_info(cert_file)
        left = info.not_after - datetime.datetime.now(datetime.timezone.utc)
        if set(names) <= set(info.names) and left > datetime.timedelta(days=SELF_SIGNED_RENEW_DAYS):
            return cert_file, key_file
    cert_pem, key_pem = _make_self_signed(names)
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(key_file, key_pem)
    cert_file.write_bytes(cert_pem)
    return cert_file, key_file


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _make_self_signed(names: list[str]) -> tuple[bytes, bytes]:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:
        message = f"--tls-self-signed needs the cryptography package ({exc}): pip install 'harvest[local]'"
        raise ConfigError(message) from exc
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"harvest serve on {socket.gethostname()}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def how_to_trust(cert_file: Path, info: CertificateInfo) -> str:
    """What `harvest serve --tls-self-signed` prints: the fingerprint and how each client trusts it."""
    cert_file = cert_file.resolve()  # the advice is pasted into other shells and programs
    return "\n".join(
        [
            f"harvest serve: self-signed certificate {cert_file}",
            f"  SHA-256 fingerprint {info.sha256}",
            f"  names: {', '.join(info.names)}; valid until {info.not_after:%Y-%m-%d}",
            "  to trust it:",
            f"    requests / harvest CLI:  REQUESTS_CA_BUNDLE={cert_file}",
            f"    Tencent SDK:             HttpProfile(endpoint=..., certification='{cert_file}')",
            "    tccli:                   append it to the bundle `python -m certifi` prints in tccli's"
            " Python",
            f"    Debian/Ubuntu store:     cp {cert_file} /usr/local/share/ca-certificates/harvest.crt"
            " && update-ca-certificates",
            "    browser:                 import it as a trusted certificate, after checking the fingerprint",
        ]
    )
