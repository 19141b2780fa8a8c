"""Where the service may send a CallbackURL request: public http(s) hosts only, unless the operator opts in.

A callback URL comes from an API client, so without a guard it would let any client make the service
POST to its own network: loopback admin ports, the cloud metadata endpoint (169.254.169.254), private
databases. Two checks close that:

1. `check_target(url, allow_private)` before sending: scheme, host, and every address the host resolves to.
2. At connect time, against DNS rebinding (a name that resolves to a public address for the first check
   and to 127.0.0.1 a moment later): `guarded_adapter` makes urllib3 resolve the name once more inside the
   connection, check every address it got, and connect to the checked address itself. The socket can
   therefore only reach an address that passed the check, while the Host header, TLS SNI and certificate
   checks still use the URL's host name, because urllib3 never learns the address.
   Proxies would defeat this (the socket would reach the proxy), so the callback session ignores proxy
   environment variables.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from harvest.errors import FieldError

FIELD = "CallbackURL"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses to try, in order. Injected by tests to play DNS tricks without DNS.
Resolver = Callable[[str, int], Sequence[str]]

# Named separately only for a clearer refusal message: all of them are link-local or private anyway.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.0.23", "100.100.100.200", "fd00:ec2::254")  # AWS/GCP, Tencent, Ali
)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), de-duplicated, in resolver order."""
    found: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why the service must not connect to `ip` ('loopback', 'private', ...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour  # ::ffff:127.0.0.1 reaches 127.0.0.1
        if embedded is not None:
            inner = forbidden_reason(embedded)
            if inner is not None:
                return inner
    if ip in _METADATA:
        return "cloud metadata"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),  # before private: Python counts 240.0.0.0/4 as both
        (ip.is_private, "private"),
        (not ip.is_global, "not globally routable"),  # CGNAT 100.64/10, documentation ranges, ...
    )
    return next((reason for hit, reason in checks if hit), None)


def check_address(host: str, address: str) -> None:
    """Raise FieldError(CallbackURL) when `address` (what `host` resolved to) is not a public address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError as exc:
        raise FieldError(FIELD, f"CallbackURL host {host} resolved to an unusable address {address}") from exc
    reason = forbidden_reason(ip)
    if reason is None:
        return
    where = f"is {ip}" if host.strip("[]") == str(ip) else f"resolves to {ip}"
    raise FieldError(FIELD, f"CallbackURL host {host} {where}, a {reason} address")


def check_target(url: str, allow_private: bool, resolve: Resolver = system_resolver) -> None:
    """Raise FieldError(CallbackURL) unless `url` is http(s) to a host whose every address is public.

    With `allow_private` only the scheme and host are checked (for tests and closed networks).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FieldError(FIELD, "CallbackURL must be an http or https URL")
    host = parts.hostname
    if not host:
        raise FieldError(FIELD, "CallbackURL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FieldError(FIELD, "CallbackURL has an invalid port") from exc
    if allow_private:
        return
    try:
        addresses = resolve(host, port)
    except OSError as exc:  # socket.gaierror
        raise FieldError(FIELD, f"CallbackURL host {host} does not resolve") from exc
    except UnicodeError as exc:  # the resolver's IDNA encoding: an empty or over-long label
        raise FieldError(FIELD, f"CallbackURL host {host} is not a valid host name") from exc
    if not addresses:
        raise FieldError(FIELD, f"CallbackURL host {host} does not resolve")
    for address in addresses:
        check_address(host, address)


# --- connect-time guard ------------------------------------------------------------------------


def _guarded_socket(conn: HTTPConnection, resolve: Resolver) -> socket.socket:
    """What urllib3's HTTPConnection._new_conn does, but only to addresses that pass check_address.

    A refusal raises FieldError, which urllib3 and requests let through unwrapped (they only catch
    network errors), so the caller can tell "refused" from "unreachable".
    """
    try:
        addresses = resolve(conn.host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    for address in addresses:  # all of them first: a name with one private address is refused whole
        check_address(conn.host, address)
    failure: Exception = NameResolutionError(conn.host, conn, socket.gaierror("no addresses"))
    for address in addresses:
        try:
            return create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:  # socket.timeout; urllib3 reports it the same way
            failure = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out")
            failure.__cause__ = exc
        except OSError as exc:
            failure = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
            failure.__cause__ = exc
    raise failure


def guarded_adapter(resolve: Resolver = system_resolver) -> HTTPAdapter:
    """A requests adapter whose new connections go only to public addresses; no urllib3 retries."""

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_socket(self, resolve)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _guarded_socket(self, resolve)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    adapter = HTTPAdapter(max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}
    return adapter
