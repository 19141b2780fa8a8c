"""TLS connections on the HTTP server: one whose client goes silent is closed at the head deadline
and its slot freed soon after, although the client never answers the TLS close (asyncio would
otherwise wait 30 s for its close_notify, keeping the slot taken)."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

from tests.support.polling import eventually
from tests.support.tls import TEST_HOST, CertificateAuthority

from harvest.local.http_server import HttpRequest, HttpResponse, HttpServer, ServerLimits, text_response
from harvest.local.tls import server_context


def hello(request: HttpRequest) -> HttpResponse:
    return text_response(200, "hello\n")


def test_a_silent_tls_client_loses_its_slot_soon_after_the_head_deadline(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    cert = ca.issue()
    context = server_context(cert.cert_file, cert.key_file)
    with HttpServer(hello, limits=ServerLimits(head_timeout=1.0), ssl_context=context) as server:
        # GIVEN a client that completes the handshake, then neither sends nor reads anything
        client_context = ssl.create_default_context(cafile=str(ca.ca_file))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        silent = client_context.wrap_socket(raw, server_hostname=TEST_HOST)
        eventually(lambda: server.connection_count == 1, 5, "the connection to be counted")
        started = time.monotonic()
        # THEN the server closes it at the head deadline and frees its slot within seconds, not 30
        eventually(lambda: server.connection_count == 0, 10, "the silent connection's slot to be freed")
        assert time.monotonic() - started < 10
        silent.close()
        # AND the server still answers
        answer = client_context.wrap_socket(
            socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname=TEST_HOST
        )
        answer.sendall(f"GET / HTTP/1.1\r\nHost: {TEST_HOST}\r\nConnection: close\r\n\r\n".encode())
        assert answer.recv(100).startswith(b"HTTP/1.1 200")
        answer.close()
