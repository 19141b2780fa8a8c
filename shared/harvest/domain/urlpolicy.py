"""One URL-safety policy for everything the service fetches or posts to.

Origin playlists, segments, init sections, keys and CallbackURLs all come, directly or through a
playlist, from someone other than the operator, so without a policy a hostile playlist or API
client could make the service reach its own network: loopback admin ports, the cloud metadata
service (169.254.169.254), private databases. The rules, applied at Create and again at connect
time (netguard), so the two can never disagree:

1. Only http and https URLs with a host and a valid port.
2. Never an address that is loopback, private, link-local, metadata, multicast, reserved or
   otherwise not globally routable, also when it hides inside an IPv6 form (`::ffff:127.0.0.1`,
   the 6to4 `2002:7f00:1::`). A name is refused when ANY address it resolves to is refused.
3. Exceptions the operator made: hosts, addresses or networks in `HARVEST_ALLOWED_PRIVATE_HOSTS`;
   for origin requests, the endpoint's own host (the operator wrote it in channels.yaml); for
   callbacks, anything with `HARVEST_ALLOW_PRIVATE_CALLBACKS=true`.
4. An endpoint's `headers` (often the origin's secret) and time-shift query go only to the
   endpoint's own scheme, host and port (`ScopedHeaders`), never to another host a playlist or a
   redirect names.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from harvest.errors import TargetRefused
from harvest.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses to try, in order. Tests inject one to play DNS tricks without DNS.
Resolver = Callable[[str, int], Sequence[str]]
Origin = tuple[str, str, int]  # (scheme, host, port), lower case, port made explicit

# Named separately only for a clearer refusal message: all of them are link-local or private anyway.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.0.23", "100.100.100.200", "fd00:ec2::254")  # AWS/GCP, Tencent, Ali
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why the service must not connect to `ip` ('loopback', 'private', ...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour  # ::ffff:127.0.0.1 and 2002:7f00:1:: reach 127.0.0.1
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


def parse_ip(text: str) -> IPAddress | None:
    """`text` as an IP address (an IPv6 zone id dropped), or None."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL, or None when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme]


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port (where an endpoint's headers may go)."""
    mine = origin_of(url)
    return mine is not None and mine == origin_of(other)


class ScopedHeaders(dict[str, str]):
    """An endpoint's `headers`, which know the one origin they may be sent to (rule 4)."""

    def __init__(self, headers: Mapping[str, str], home: str) -> None:
        super().__init__(headers)
        self.origin = origin_of(home)

    def for_url(self, url: str) -> dict[str, str]:
        """The headers to send with a request to `url`: all of them at home, none elsewhere."""
        return dict(self) if self.origin is not None and origin_of(url) == self.origin else {}


def _allow_entry(entry: str) -> str | IPNetwork:
    network = entry.strip().replace("[", "").replace("]", "")  # "[fd00::]/8" as well as "fd00::/8"
    try:
        return ipaddress.ip_network(network, strict=False)
    except ValueError:
        return entry.strip().lower().rstrip(".")


@dataclass(frozen=True)
class UrlPolicy:
    """Rule 2 with its exceptions. `allowed`: host names, addresses or CIDR networks the operator allows."""

    allowed: tuple[str, ...] = ()
    allow_private: bool = False  # everything passes rule 2 (callbacks with HARVEST_ALLOW_PRIVATE_CALLBACKS)

    @classmethod
    def for_origins(cls, settings: Settings) -> UrlPolicy:
        return cls(settings.allowed_private_hosts)

    @classmethod
    def for_callbacks(cls, settings: Settings) -> UrlPolicy:
        return cls(settings.allowed_private_hosts, allow_private=settings.allow_private_callbacks)

    def _allows(self, host: str, ip: IPAddress) -> bool:
        name = host.lower().strip("[]").rstrip(".")
        for entry in map(_allow_entry, self.allowed):
            if isinstance(entry, str) and entry == name:
                return True
            if not isinstance(entry, str) and ip.version == entry.version and ip in entry:
                return True
        return False

    def refusal(self, host: str, address: str, trusted: Collection[str] = ()) -> str | None:
        """Why `host`, resolved to `address`, must not be reached; None when it may.

        `trusted`: host names the caller vouches for (an origin request's own endpoint host).
        """
        ip = parse_ip(address)
        if ip is None:
            return f"host {host} resolved to an unusable address {address}"
        if self.allow_private or host.lower().strip("[]").rstrip(".") in trusted or self._allows(host, ip):
            return None
        reason = forbidden_reason(ip)
        if reason is None:
            return None
        if parse_ip(host) == ip:
            return f"host {host} is refused: a {reason} address"
        return f"host {host} is refused: it resolves to {ip}, a {reason} address"

    def check_address(
        self, host: str, address: str, trusted: Collection[str] = (), label: str = "URL"
    ) -> None:
        """Raise TargetRefused when `host` resolved to `address` must not be reached."""
        why = self.refusal(host, address, trusted)
        if why is not None:
            raise TargetRefused(f"{label} {why}" if label else why)

    def check_url(
        self,
        url: str,
        resolve: Resolver,
        *,
        trusted: Collection[str] = (),
        label: str = "URL",
        unresolved_ok: bool = False,
    ) -> None:
        """Raise TargetRefused unless `url` is http(s) and every address its host resolves to may be reached.

        `unresolved_ok` lets a name that does not resolve pass (Create resolves nothing but local names;
        the connect-time guard refuses what then resolves somewhere forbidden).
        """
        _scheme, host, port = check_scheme(url, label)
        if self.allow_private:
            return
        literal = parse_ip(host)
        try:
            addresses = [str(literal)] if literal is not None else list(resolve(host, port))
        except OSError as exc:  # socket.gaierror, or local_names_only's "not resolved here"
            if unresolved_ok:
                return
            raise TargetRefused(f"{label} host {host} does not resolve".lstrip()) from exc
        except UnicodeError as exc:  # the resolver's IDNA encoding: an empty or over-long label
            raise TargetRefused(f"{label} host {host} is not a valid host name".lstrip()) from exc
        if not addresses:
            if unresolved_ok:
                return
            raise TargetRefused(f"{label} host {host} does not resolve".lstrip())
        for address in addresses:  # all of them: a name with one private address is refused whole
            self.check_address(host, address, trusted, label)


def check_scheme(url: str, label: str = "URL") -> Origin:
    """Rule 1: (scheme, host, port) of an http(s) URL; TargetRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"{label} has an invalid port") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise TargetRefused(f"{label} must be an http or https URL")
    if not parts.hostname:
        raise TargetRefused(f"{label} has no host")
    return scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme]


# --- resolvers ----------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), de-duplicated, in resolver order."""
    found: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def local_names_only(host: str, port: int = 0) -> list[str]:
    """A resolver that answers, without DNS, only for names that always mean this machine.

    Used at Create, which must not wait on DNS: literal addresses, `localhost` names and the legacy
    numeric IPv4 forms resolvers accept (2130706433, 0x7f.1, 127.1) are checked there; any other
    name is left to the connect-time check.
    """
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    try:
        return [socket.inet_ntoa(socket.inet_aton(name))]
    except OSError:
        raise OSError(f"{host} is not resolved without DNS") from None


def policy_hosts(urls: Iterable[str]) -> frozenset[str]:
    """The host names of `urls` (the endpoints an operator configured)."""
    return frozenset(origin[1] for origin in map(origin_of, urls) if origin is not None)
