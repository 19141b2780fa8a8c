"""The URL-safety policy (domain/urlpolicy) enforced where connections are made.

A check before a request is not enough against DNS rebinding (a name that resolves to a public
address for the first check and to 127.0.0.1 a moment later): `guarded_adapter` makes urllib3
resolve the name once more inside the connection, check every address it got with the policy,
and connect to the checked address itself. The socket can therefore only reach an address that
passed the check, while the Host header, TLS SNI and certificate checks still use the URL's host
name, because urllib3 never learns the address. Proxies would defeat this (the socket would reach
the proxy), so sessions using the guard ignore proxy environment variables.

The check is a function of (host, address), so the caller decides per request which hosts it
trusts (an origin request trusts its endpoint's own host; a callback trusts none).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

from harvest.domain.urlpolicy import Resolver, system_resolver

# (host, address) -> None, or raises TargetRefused. Raised inside the connection, it passes through
# urllib3 and requests unwrapped (they only catch network errors), so callers can tell "refused"
# from "unreachable".
AddressCheck = Callable[[str, str], None]

__all__ = ["AddressCheck", "Resolver", "guarded_adapter", "system_resolver"]


# --- connect-time guard ------------------------------------------------------------------------


def _guarded_socket(conn: HTTPConnection, resolve: Resolver, check: AddressCheck) -> socket.socket:
    """What urllib3's HTTPConnection._new_conn does, but only to addresses that pass `check`."""
    try:
        addresses = resolve(conn.host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    for address in addresses:  # all of them first: a name with one private address is refused whole
        check(conn.host, address)
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


def guarded_adapter(
    check: AddressCheck,
    resolve: Resolver = system_resolver,
    pool_size: int = 10,
    on_connect: Callable[[socket.socket], None] | None = None,
) -> HTTPAdapter:
    """A requests adapter whose new connections go only to addresses `check` passes; no urllib3 retries.

    `on_connect` sees every new socket (a watchdog can shut it down to enforce an overall deadline).
    """

    def new_socket(conn: HTTPConnection) -> socket.socket:
        sock = _guarded_socket(conn, resolve, check)
        if on_connect is not None:
            on_connect(sock)
        return sock

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return new_socket(self)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return new_socket(self)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}
    return adapter
