"""CallbackNotifier against a real HTTP receiver on 127.0.0.1, and the address guard behind it."""

from __future__ import annotations

import ipaddress
import json
import random
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from tests.support.callback_receiver import Answer, CallbackReceiver

from harvest.adapters.callback import CallbackNotifier
from harvest.adapters.retry import RetryPolicy
from harvest.domain import urlpolicy
from harvest.domain.urlpolicy import Resolver, UrlPolicy, forbidden_reason, system_resolver
from harvest.errors import TargetRefused

PAYLOAD = {"ID": "job-1", "Status": "Completed", "ErrMessage": "", "Note": "直播"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket these tests open may only reach 127.0.0.1: a broken guard fails the test, not the LAN."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"test tried to connect to {address}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """A receiver that answers only the paths a test scripts (404 elsewhere)."""
    with CallbackReceiver(unscripted=Answer(404)) as scripted:
        yield scripted


@dataclass
class Notifier:
    notifier: CallbackNotifier
    sleeps: list[float]


@pytest.fixture
def make_notifier() -> Iterator[Callable[..., Notifier]]:
    made: list[CallbackNotifier] = []

    def make(allow_private: bool, **kwargs: Any) -> Notifier:
        sleeps: list[float] = []
        policy = RetryPolicy(rng=random.Random(3))
        targets = UrlPolicy(allow_private=allow_private)
        notifier = CallbackNotifier(policy, 2.0, targets, sleep=sleeps.append, **kwargs)
        made.append(notifier)
        return Notifier(notifier, sleeps)

    yield make
    for notifier in made:
        notifier.close()


def check_target(url: str, allow_private: bool, resolve: Resolver = system_resolver) -> None:
    """What the notifier checks before sending: the callback policy, as at Create."""
    UrlPolicy(allow_private=allow_private).check_url(url, resolve, label="CallbackURL")


def fixed_resolver(*answers: Sequence[str]) -> Callable[[str, int], Sequence[str]]:
    """A resolver answering each lookup with the next list of addresses (the last one repeats)."""
    pending = list(answers)

    def resolve(host: str, port: int) -> Sequence[str]:
        return pending.pop(0) if len(pending) > 1 else pending[0]

    return resolve


# --- delivery -----------------------------------------------------------------------------------


def test_delivered_as_json_on_the_first_attempt(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN a receiver that accepts callbacks (on loopback, so private targets are allowed)
    url = receiver.script("/hook", Answer(200))
    # WHEN notifying it
    outcome = make_notifier(allow_private=True).notifier.notify(url, PAYLOAD)
    # THEN it got the payload as JSON, and the outcome says delivered
    assert outcome == "delivered: HTTP 200 after 1 attempt"
    (request,) = receiver.requests()
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == PAYLOAD


def test_500_is_retried_until_delivered(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN a receiver that fails once, then accepts
    url = receiver.script("/hook", Answer(500), Answer(204))
    made = make_notifier(allow_private=True)
    # WHEN notifying it
    outcome = made.notifier.notify(url, PAYLOAD)
    # THEN the second attempt delivered it after one backoff wait
    assert outcome == "delivered: HTTP 204 after 2 attempts"
    assert receiver.count("/hook") == 2
    assert len(made.sleeps) == 1


def test_500_forever_fails_after_every_attempt(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN a receiver that always fails
    url = receiver.script("/hook", Answer(500))
    # WHEN notifying it
    outcome = make_notifier(allow_private=True).notifier.notify(url, PAYLOAD)
    # THEN all 5 attempts were made and the outcome says failed (no exception)
    assert outcome == "failed: HTTP 500 after 5 attempts"
    assert receiver.count("/hook") == 5


def test_4xx_is_not_retried(receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]) -> None:
    # GIVEN a receiver that rejects the request
    url = receiver.script("/hook", Answer(400))
    # WHEN notifying it
    outcome = make_notifier(allow_private=True).notifier.notify(url, PAYLOAD)
    # THEN one attempt was enough to know
    assert outcome == "failed: HTTP 400 after 1 attempt"
    assert receiver.count("/hook") == 1


def test_429_retry_after_is_honoured(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN a receiver that asks to come back in 3 s, then accepts
    url = receiver.script("/hook", Answer(429, {"Retry-After": "3"}), Answer(200))
    made = make_notifier(allow_private=True)
    # WHEN notifying it
    outcome = made.notifier.notify(url, PAYLOAD)
    # THEN the wait was the receiver's
    assert outcome == "delivered: HTTP 200 after 2 attempts"
    assert made.sleeps == [3.0]


def test_unreachable_receiver_fails_without_raising(make_notifier: Callable[..., Notifier]) -> None:
    # GIVEN a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # WHEN notifying it
    outcome = make_notifier(allow_private=True).notifier.notify(f"http://127.0.0.1:{port}/hook", PAYLOAD)
    # THEN the outcome names the failure
    assert outcome == "failed: connection refused after 5 attempts"


def test_payload_that_is_not_json_fails_without_raising(make_notifier: Callable[..., Notifier]) -> None:
    # GIVEN a payload holding something JSON cannot encode
    # WHEN notifying
    outcome = make_notifier(allow_private=True).notifier.notify("http://127.0.0.1:9/hook", {"when": object()})
    # THEN the outcome says so
    assert outcome.startswith("failed: payload is not JSON")


def test_redirect_is_not_followed(receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]) -> None:
    # GIVEN a receiver that redirects the callback to another (loopback) path
    target = receiver.script("/internal/admin", Answer(200))
    url = receiver.script("/hook", Answer(302, {"Location": target}))
    # WHEN notifying it
    outcome = make_notifier(allow_private=True).notifier.notify(url, PAYLOAD)
    # THEN the redirect target never saw a request, and the outcome says why
    assert outcome == "failed: HTTP 302 (redirects are not followed) after 1 attempt"
    assert receiver.count("/internal/admin") == 0


# --- refusal ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "127.0.0.1 is refused: a loopback address"),
        ("http://localhost:{port}/hook", "a loopback address"),
        ("http://10.0.0.1/hook", "10.0.0.1 is refused: a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is refused: a cloud metadata address"),
        ("http://[::1]:{port}/hook", "::1 is refused: a loopback address"),
        ("ftp://example.com/hook", "must be an http or https URL"),
    ],
)
def test_forbidden_targets_are_refused_without_a_connection(
    url: str, reason: str, receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN the default policy (private targets not allowed)
    made = make_notifier(allow_private=False)
    # WHEN notifying a loopback, private, metadata or non-http target
    outcome = made.notifier.notify(url.format(port=receiver.port), PAYLOAD)
    # THEN it is refused up front: no request, no retry (and loopback_only saw no stray connection)
    assert outcome.startswith("refused: CallbackURL")
    assert reason in outcome
    assert receiver.requests() == []
    assert made.sleeps == []


def test_loopback_is_allowed_when_private_targets_are(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN an operator who allows private callback targets
    url = receiver.script("/hook", Answer(200))
    # WHEN notifying a loopback receiver
    outcome = make_notifier(allow_private=True).notifier.notify(url, PAYLOAD)
    # THEN it is delivered
    assert outcome == "delivered: HTTP 200 after 1 attempt"


def test_dns_rebinding_is_caught_at_connect_time(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier]
) -> None:
    # GIVEN a name that resolves to a public address for the first check and to loopback afterwards
    receiver.script("/hook", Answer(200))
    resolver = fixed_resolver(["93.184.216.34"], ["127.0.0.1"])
    made = make_notifier(allow_private=False, resolver=resolver)
    # WHEN notifying it
    outcome = made.notifier.notify(f"http://hooks.example:{receiver.port}/hook", PAYLOAD)
    # THEN the connection re-checked the address it was about to use and refused it
    assert outcome == (
        "refused: CallbackURL host hooks.example is refused: it resolves to 127.0.0.1, a loopback address"
    )
    assert receiver.requests() == []


def test_guarded_connection_uses_the_checked_address_and_keeps_the_host_header(
    receiver: CallbackReceiver, make_notifier: Callable[..., Notifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a guard that (for this test only) accepts loopback, and a name resolving to 127.0.0.1
    monkeypatch.setattr(urlpolicy, "forbidden_reason", lambda ip: None)
    receiver.script("/hook", Answer(200))
    made = make_notifier(allow_private=False, resolver=fixed_resolver(["127.0.0.1"]))
    # WHEN notifying a URL with that name
    outcome = made.notifier.notify(f"http://hooks.example:{receiver.port}/hook", PAYLOAD)
    # THEN the request reached the resolved address with the URL's host in the Host header
    assert outcome == "delivered: HTTP 200 after 1 attempt"
    assert receiver.requests()[0].headers["Host"] == f"hooks.example:{receiver.port}"


# --- the guard on its own -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    # GIVEN an address the service must not reach
    # WHEN classifying it
    # THEN the reason names its kind
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    # GIVEN a public address
    # WHEN classifying it
    # THEN nothing forbids it
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_a_name_with_any_private_address_is_refused() -> None:
    # GIVEN a name resolving to a public and a private address
    resolver = fixed_resolver(["93.184.216.34", "10.1.2.3"])
    # WHEN checking it
    # THEN it is refused as a whole, naming the CallbackURL host
    with pytest.raises(TargetRefused, match=r"resolves to 10\.1\.2\.3, a private address") as caught:
        check_target("https://hooks.example/cb", allow_private=False, resolve=resolver)
    assert caught.value.message.startswith("CallbackURL host hooks.example")


def test_unresolvable_name_is_refused() -> None:
    # GIVEN a name that does not resolve
    def resolve(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # WHEN checking it
    # THEN it is refused
    with pytest.raises(TargetRefused, match="does not resolve"):
        check_target("https://nowhere.invalid/cb", allow_private=False, resolve=resolve)


@pytest.mark.parametrize(
    ("url", "message"),
    [("file:///etc/passwd", "http or https"), ("http:///path-only", "no host"), ("http://h:99999/", "port")],
)
def test_malformed_urls_are_refused_even_when_private_targets_are_allowed(url: str, message: str) -> None:
    # GIVEN a URL that is not a usable http(s) target
    # WHEN checking it with private targets allowed
    # THEN it is still refused
    with pytest.raises(TargetRefused, match=message):
        check_target(url, allow_private=True)


def test_allow_private_skips_resolution() -> None:
    # GIVEN a resolver that must not be consulted
    def resolve(host: str, port: int) -> Sequence[str]:
        raise AssertionError("resolved although private targets are allowed")

    # WHEN checking with private targets allowed
    # THEN the URL passes without a lookup
    check_target("http://anything.internal:8080/cb", allow_private=True, resolve=resolve)
