"""CallbackURL delivery: POST the ended job as JSON, retry transient failures, report how it went.

notify() never raises and returns an outcome string the caller records on the job
("delivered: HTTP 200 after 1 attempt", "failed: HTTP 500 after 5 attempts", "refused: <why>"):
the job's status is committed before the callback runs, and a callback must not change it.

Every attempt has an overall deadline (connect, send, and the answer's status line and headers):
a receiver that trickles its answer a byte at a time would beat any per-read timeout, so a
watchdog shuts the attempt's socket down when the deadline passes. Each attempt opens its own
connection, so the watchdog always knows which socket to close.

Safety (domain/urlpolicy, enforced at connect time by netguard): the URL is checked before
sending, and again at connect time against DNS rebinding. Redirects are never followed: a 3xx is
reported as a failure (not retried), because a redirect could point the POST at a forbidden
target, and a callback receiver has no reason to redirect. Proxy environment variables are
ignored for the same reason.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests

from harvest.adapters.http_origin import NOT_TRANSIENT_ERRORS, describe_network_error, public_url
from harvest.adapters.netguard import guarded_adapter
from harvest.adapters.retry import RetryPolicy, after_attempts, parse_retry_after
from harvest.domain.urlpolicy import Resolver, UrlPolicy, system_resolver
from harvest.errors import TargetRefused
from harvest.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "harvest-callback/0.1"
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class _Attempt:
    status: int | None  # None: no HTTP answer
    reason: str
    retry_after: float | None = None
    refused: bool = False  # the target is forbidden
    final: bool = False  # trying again cannot help (a bad URL, a certificate problem)

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        if self.refused or self.final:
            return False
        if self.status is None:
            return True  # network errors
        return self.status >= 500 or self.status in (408, 429)


class CallbackNotifier:
    """Delivers CallbackURL notifications. Thread-safe."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float,
        targets: UrlPolicy,
        sleep: Callable[[float], None] = time.sleep,
        *,
        deadline: float | None = None,
        resolver: Resolver = system_resolver,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`timeout` bounds each connect and read; `deadline` (default: `timeout`) a whole attempt."""
        self._policy = policy
        self._timeout = timeout
        self._deadline = deadline if deadline is not None else timeout
        self._targets = targets
        self._sleep = sleep
        self._resolver = resolver
        self._clock = clock
        self._user_agent = user_agent

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackNotifier:
        policy = RetryPolicy(attempts=settings.fetch_attempts, base_delay=settings.fetch_backoff)
        return cls(
            policy,
            min(settings.fetch_timeout, settings.callback_deadline),
            UrlPolicy.for_callbacks(settings),
            deadline=settings.callback_deadline,
        )

    def close(self) -> None:
        """Nothing is held between deliveries (each attempt has its own connection)."""

    def __enter__(self) -> CallbackNotifier:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check(self, host: str, address: str) -> None:
        self._targets.check_address(host, address, label="CallbackURL")

    def notify(self, url: str, payload: Mapping[str, Any]) -> str:
        """POST `payload` as JSON to `url`; the outcome as text. Never raises."""
        try:
            self._targets.check_url(url, self._resolver, label="CallbackURL")
        except TargetRefused as exc:
            return f"refused: {exc.message}"
        try:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            return f"failed: payload is not JSON ({exc})"
        attempt = 1
        while True:
            result = self._post_once(url, body)
            if result.delivered:
                outcome = f"delivered: {result.reason} {after_attempts(attempt)}"
            elif result.refused:
                outcome = f"refused: {result.reason}"
            elif not result.retryable or attempt >= self._policy.attempts:
                outcome = f"failed: {result.reason} {after_attempts(attempt)}"
            else:
                delay = self._policy.delay(attempt - 1, result.retry_after)
                log.info("callback to %s: %s, retrying in %.2f s", public_url(url), result.reason, delay)
                self._sleep(delay)
                attempt += 1
                continue
            log.info("callback to %s %s", public_url(url), outcome)
            return outcome

    def _post_once(self, url: str, body: bytes) -> _Attempt:
        sockets: list[socket.socket] = []
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            for sock in list(sockets):
                with suppress(OSError):  # already closed: the attempt ended meanwhile
                    sock.shutdown(socket.SHUT_RDWR)

        session = requests.Session()
        session.trust_env = False  # a proxy would connect for us, past the connect-time guard
        adapter = guarded_adapter(self._check, self._resolver, pool_size=1, on_connect=sockets.append)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        watchdog = threading.Timer(self._deadline, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            response = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": self._user_agent},
                timeout=(self._timeout, self._timeout),
                allow_redirects=False,
                stream=True,  # the receiver's answer body is never needed, so never read
            )
        except TargetRefused as exc:  # the connect-time guard: the name now resolves somewhere forbidden
            return _Attempt(None, exc.message, refused=True)
        except requests.RequestException as exc:
            if expired.is_set():
                return _Attempt(None, f"no answer within the {self._deadline:g} s deadline")
            return _Attempt(None, describe_network_error(exc), final=isinstance(exc, NOT_TRANSIENT_ERRORS))
        except Exception as exc:
            # Deliberately broad: the job's status is already committed and the caller records
            # this outcome; an unforeseen error here must not escape into the job's flow.
            log.exception("callback to %s failed unexpectedly", public_url(url))
            return _Attempt(None, f"unexpected error {type(exc).__name__}", final=True)
        finally:
            watchdog.cancel()
            session.close()
        with response:
            status = response.status_code
            if 300 <= status < 400:
                return _Attempt(status, f"HTTP {status} (redirects are not followed)")
            retry_after = None
            if status in _RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return _Attempt(status, f"HTTP {status}", retry_after=retry_after)
