"""harvest serve's HTTP server on its own: the connection cap, the request-head and body deadlines,
graceful stop, one-line mounts, Nagle off and TLS."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import socket
import ssl
import statistics
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.support.polling import eventually

from harvest.local.http_server import HttpRequest, HttpResponse, HttpServer, ServerLimits, text_response


def echo(request: HttpRequest) -> HttpResponse:
    return text_response(200, f"{request.method} {request.target} {len(request.body)}")


def get(server: HttpServer, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    result = response.status, response.read()
    connection.close()
    return result


def test_connections_past_the_cap_get_503_and_the_server_recovers() -> None:
    # GIVEN a server capped at 3 connections, all 3 taken by idle clients
    with HttpServer(echo, limits=ServerLimits(max_connections=3)) as server:
        idle = [socket.create_connection((server.host, server.port)) for _ in range(3)]
        eventually(lambda: server.connection_count == 3, 5, "the 3 idle connections to be counted")
        # WHEN a fourth client asks THEN it is answered 503 at once
        status, body = get(server, "/x")
        assert (status, body) == (503, b"too many connections, retry")
        # AND once an idle client leaves, requests are served again
        idle.pop().close()
        eventually(lambda: server.connection_count == 2, 5, "the closed connection to be uncounted")
        assert get(server, "/x") == (200, b"GET /x 0")
        for sock in idle:
            sock.close()


def test_a_request_head_trickled_past_the_deadline_is_dropped() -> None:
    # GIVEN a 1 s request-head deadline
    with HttpServer(echo, limits=ServerLimits(head_timeout=1.0)) as server:
        sock = socket.create_connection((server.host, server.port), timeout=5)
        started = time.monotonic()
        closed_after = None
        # WHEN a client sends its head one byte every 0.1 s, never finishing it
        for byte in b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                sock.send(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.1)
        else:
            sock.settimeout(3)
            assert sock.recv(100) == b""
            closed_after = time.monotonic() - started
        sock.close()
        # THEN the server dropped it at the deadline, though bytes kept arriving
        assert closed_after is not None
        assert closed_after < 4


def test_a_body_that_does_not_arrive_in_time_gets_408() -> None:
    with HttpServer(echo, limits=ServerLimits(body_timeout=0.5)) as server:
        sock = socket.create_connection((server.host, server.port), timeout=5)
        # GIVEN a complete head announcing 10 bytes WHEN only 1 byte ever arrives
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
        answer = sock.recv(4096)
        sock.close()
    # THEN the answer is 408 and the connection is closed
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()


def test_stop_lets_a_request_in_flight_finish() -> None:
    entered = threading.Event()

    def slow(request: HttpRequest) -> HttpResponse:
        entered.set()
        time.sleep(0.5)
        return text_response(200, "done")

    server = HttpServer(slow).start()
    results: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: results.append(get(server, "/")))
    client.start()
    assert entered.wait(5)
    # WHEN the server is stopped while the route runs
    server.stop()
    client.join()
    # THEN the request still got its answer, and the port is closed
    assert results == [(200, b"done")]
    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_a_route_mounts_in_one_line_and_the_longest_prefix_wins() -> None:
    with HttpServer(echo) as server:
        server.mount("/console/", lambda request: text_response(200, "console " + request.path))
        server.mount("/console/api/", lambda request: text_response(200, "deeper"))
        assert get(server, "/console/index.html") == (200, b"console /console/index.html")
        assert get(server, "/console") == (200, b"console /console")
        assert get(server, "/console/api/x") == (200, b"deeper")
        assert get(server, "/consoles") == (200, b"GET /consoles 0")


def test_keep_alive_answers_are_not_held_by_nagle() -> None:
    # GIVEN one keep-alive connection WHEN 20 requests go over it
    with HttpServer(echo) as server:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            connection.request("POST", "/", body=b"{}")
            connection.getresponse().read()
            timings.append(time.perf_counter() - started)
        connection.close()
    # THEN the typical answer takes far less than the ~40 ms a delayed ACK costs with Nagle on
    assert statistics.median(timings) < 0.020


def test_tls_is_a_context_handed_to_the_server(tmp_path: Path) -> None:
    # GIVEN a self-signed certificate for 127.0.0.1 and a server given an SSL context for it
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harvest-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    with HttpServer(echo, ssl_context=server_context) as server:
        # WHEN a client that trusts the certificate asks over HTTPS
        client_context = ssl.create_default_context(cafile=str(cert_file))
        connection = http.client.HTTPSConnection(server.host, server.port, timeout=10, context=client_context)
        connection.request("GET", "/secure?x=1")
        response = connection.getresponse()
        # THEN it is answered like any other request
        assert (response.status, response.read()) == (200, b"GET /secure?x=1 0")
        connection.close()
