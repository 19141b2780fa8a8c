"""The URL-safety policy: schemes, refused addresses and their disguises, exceptions, header scope."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harvest.domain.urlpolicy import (
    Resolver,
    ScopedHeaders,
    UrlPolicy,
    check_scheme,
    local_names_only,
    origin_of,
    same_origin,
)
from harvest.errors import TargetRefused


def resolving_to(*addresses: str) -> Resolver:
    def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1: passed at Create before, refused at delivery
        ("2002:a9fe:a9fe::", "cloud metadata"),  # 6to4 of 169.254.169.254
        ("::ffff:192.168.0.1", "private"),
        ("100.100.100.200", "cloud metadata"),
        ("fe80::1%eth0", "link-local"),
    ],
)
def test_disguised_private_addresses_are_refused(address: str, kind: str) -> None:
    # GIVEN the default policy / WHEN a host resolves to a disguised private address
    why = UrlPolicy().refusal("hooks.example", address)
    # THEN it is refused, naming what the address really is
    assert why is not None
    assert why.endswith(f"a {kind} address")


def test_the_allow_list_takes_names_addresses_and_networks() -> None:
    # GIVEN an operator allow-list with a name, an address and a network
    policy = UrlPolicy(allowed=("cdn.internal", "10.1.2.3", "192.168.0.0/16", "[fd00::]/8"))
    # WHEN private addresses are checked / THEN only those the list names pass
    assert policy.refusal("cdn.internal", "10.9.9.9") is None
    assert policy.refusal("other.internal", "10.1.2.3") is None
    assert policy.refusal("x", "192.168.44.5") is None
    assert policy.refusal("x", "fd12::5") is None
    assert policy.refusal("x", "10.1.2.4") is not None
    assert policy.refusal("x", "127.0.0.1") is not None


def test_a_trusted_host_passes_whatever_it_resolves_to() -> None:
    # GIVEN an origin request whose endpoint host is 127.0.0.1 (the operator's own origin)
    # WHEN that host and another loopback host are checked
    # THEN only the endpoint's own host passes
    assert UrlPolicy().refusal("127.0.0.1", "127.0.0.1", trusted={"127.0.0.1"}) is None
    assert UrlPolicy().refusal("127.0.0.2", "127.0.0.2", trusted={"127.0.0.1"}) is not None


def test_check_url_refuses_schemes_names_resolving_anywhere_private_and_unresolvable_names() -> None:
    policy = UrlPolicy()
    for url in ("file:///etc/passwd", "gopher://h/", "http:///no-host", "http://h:99999/"):
        with pytest.raises(TargetRefused):
            policy.check_url(url, resolving_to("93.184.216.34"))
    with pytest.raises(TargetRefused, match=r"resolves to 10\.0\.0\.1, a private address"):
        policy.check_url("https://mixed.example/x", resolving_to("93.184.216.34", "10.0.0.1"))
    with pytest.raises(TargetRefused, match="does not resolve"):
        policy.check_url("https://nowhere.example/x", resolving_to())
    policy.check_url("https://nowhere.example/x", resolving_to(), unresolved_ok=True)
    policy.check_url("https://public.example/x", resolving_to("93.184.216.34"))


def test_create_resolves_only_names_that_always_mean_this_machine() -> None:
    assert local_names_only("localhost") == ["127.0.0.1", "::1"]
    assert local_names_only("0x7f.1") == ["127.0.0.1"]
    with pytest.raises(OSError, match=r"hooks\.example\.com is not resolved without DNS"):
        local_names_only("hooks.example.com")


def test_origins_make_default_ports_explicit() -> None:
    assert origin_of("HTTP://Origin.Example/a") == ("http", "origin.example", 80)
    assert origin_of("https://origin.example:443/a?x") == ("https", "origin.example", 443)
    assert origin_of("ftp://origin.example/") is None
    assert same_origin("http://o.example/a.m3u8", "http://o.example:80/b/c.ts")
    assert not same_origin("http://o.example/a", "https://o.example/a")
    assert not same_origin("http://o.example/a", "http://o.example:8080/a")
    assert check_scheme("https://h.example:8443/x") == ("https", "h.example", 8443)


def test_scoped_headers_go_only_to_their_own_scheme_host_and_port() -> None:
    # GIVEN an endpoint's secret header
    headers = ScopedHeaders({"X-Origin-Secret": "s"}, "https://origin.example/live/master.m3u8")
    # WHEN asking what to send where
    # THEN the endpoint's own origin gets it, any other scheme, host or port does not
    assert headers.for_url("https://origin.example/live/v0/1.ts") == {"X-Origin-Secret": "s"}
    assert headers.for_url("https://cdn.example/live/v0/1.ts") == {}
    assert headers.for_url("http://origin.example/live/v0/1.ts") == {}
    assert headers.for_url("https://origin.example:8443/live/v0/1.ts") == {}
