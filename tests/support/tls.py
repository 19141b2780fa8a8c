"""HTTPS test helpers: a CA the test creates and trusts, server certificates it issues for a
non-localhost name, and a CONNECT proxy that maps that name to 127.0.0.1.

Why a proxy: the certificate names `harvest.test` (not localhost, so browsers and clients treat it
as a remote host), and nothing on the machine resolves that name. Python clients (the Tencent SDK,
tccli) reach it through an HTTPS proxy, as they would behind a corporate proxy: they send
`CONNECT harvest.test:PORT`, the proxy connects that to 127.0.0.1:PORT, and TLS runs end to end
through the tunnel with SNI and hostname checks against `harvest.test`. Chromium gets
`--host-resolver-rules` instead.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEST_HOST = "harvest.test"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class ServerCertificate:
    cert_file: Path
    key_file: Path
    der: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def spki_hash(self) -> str:
        """base64(SHA-256(SPKI)): what chromium's --ignore-certificate-errors-spki-list takes."""
        public = x509.load_der_x509_certificate(self.der).public_key()
        spki = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class CertificateAuthority:
    """A certificate authority made for one test run: `ca_file` is what clients trust."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harvest test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / "test-ca.pem"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str = TEST_HOST, stem: str = "server") -> ServerCertificate:
        """A server certificate for `name`, signed by this CA, written to `stem`.crt/.key."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_file, key_file = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return ServerCertificate(cert_file, key_file, cert.public_bytes(serialization.Encoding.DER))


def certifi_trusting(ca_file: Path, directory: Path) -> Path:
    """A copy of the certifi package whose bundle is `ca_file`, for a PYTHONPATH entry.

    tccli (through the SDK) trusts only `certifi.where()`; a user trusts a private CA by appending it
    to that bundle. The test does the same on a private copy instead of editing the venv's."""
    import certifi

    target = directory / "certifi-trusting" / "certifi"
    shutil.copytree(Path(certifi.__file__).parent, target, dirs_exist_ok=True)
    shutil.copy(ca_file, target / "cacert.pem")
    return target.parent


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels `TEST_HOST:port` to 127.0.0.1:port (only)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.tunnels: list[str] = []  # the CONNECT targets served, in order
        self._thread = threading.Thread(target=self._accept, name="connect-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host != TEST_HOST:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            with socket.create_connection(("127.0.0.1", int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                pump = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
                pump.start()
                _copy(client, upstream)
                pump.join(timeout=30)

    def stop(self) -> None:
        self._server.close()


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass
