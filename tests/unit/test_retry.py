"""RetryPolicy: capped exponential backoff with full jitter, and Retry-After handling."""

from __future__ import annotations

import random
import time
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvest.adapters.retry import RetryPolicy, after_attempts, parse_retry_after
from harvest.errors import ConfigError, StorageError, Unavailable
from harvest.handlers.batch import through_outages


class TopOfRange(random.Random):
    """An rng whose jitter always lands on the cap, so the caps themselves can be checked."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_default_policy_waits_four_times_doubling_from_0_2_s() -> None:
    # GIVEN the default policy with jitter pinned to its upper bound
    policy = RetryPolicy(rng=TopOfRange())
    # WHEN listing the waits between attempts
    delays = list(policy.delays())
    # THEN 5 attempts wait 4 times, doubling from the base delay
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6])


def test_backoff_is_capped_at_max_delay() -> None:
    # GIVEN a policy with more attempts than it takes to reach the cap
    policy = RetryPolicy(attempts=8, rng=TopOfRange())
    # WHEN listing the waits
    delays = list(policy.delays())
    # THEN they grow to 5 s and stay there
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_custom_multiplier_and_base() -> None:
    # GIVEN base 1 s, multiplier 3, cap 20 s
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=20.0, multiplier=3.0, rng=TopOfRange())
    # WHEN listing the waits
    # THEN each cap is three times the last, then capped
    assert list(policy.delays()) == pytest.approx([1.0, 3.0, 9.0, 20.0])


def test_single_attempt_never_waits() -> None:
    # GIVEN a policy with one attempt
    # WHEN listing its waits
    # THEN there are none
    assert list(RetryPolicy(attempts=1).delays()) == []


def test_full_jitter_is_reproducible_with_a_seeded_rng_and_stays_under_each_cap() -> None:
    # GIVEN two policies with the same seed
    first = RetryPolicy(attempts=8, rng=random.Random(42))
    second = RetryPolicy(attempts=8, rng=random.Random(42))
    # WHEN drawing their delays
    a, b = list(first.delays()), list(second.delays())
    # THEN they are equal, each within [0, cap], and really jittered (not all at the cap)
    assert a == b
    caps = [first.backoff_cap(n) for n in range(7)]
    assert all(0.0 <= delay <= cap for delay, cap in zip(a, caps, strict=True))
    assert a != pytest.approx(caps)


@given(retry=st.integers(min_value=0, max_value=10_000), seed=st.integers(min_value=0, max_value=2**32))
def test_any_delay_is_between_zero_and_the_capped_exponential(retry: int, seed: int) -> None:
    # GIVEN any retry number and seed
    policy = RetryPolicy(rng=random.Random(seed))
    # WHEN drawing a delay
    delay = policy.delay(retry)
    # THEN it lies in [0, min(max_delay, base * 2**retry)]
    assert 0.0 <= delay <= min(5.0, 0.2 * 2.0 ** min(retry, 64))


def test_retry_after_is_honoured_up_to_max_delay() -> None:
    # GIVEN a policy whose jitter would otherwise be used
    policy = RetryPolicy(rng=TopOfRange())
    # WHEN the server asked for 2 s, 60 s, or a nonsense negative wait
    # THEN 2 s is honoured exactly, 60 s is capped at 5 s, a negative wait becomes 0
    assert policy.delay(0, retry_after=2.0) == 2.0
    assert policy.delay(0, retry_after=60.0) == 5.0
    assert policy.delay(3, retry_after=-1.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attempts": 0}, "attempts"),
        ({"base_delay": -1.0}, "delays"),
        ({"max_delay": -1.0}, "delays"),
        ({"multiplier": 0.5}, "multiplier"),
    ],
)
def test_nonsense_policies_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    # GIVEN a policy value that cannot work
    # WHEN building the policy
    # THEN a ConfigError names the problem
    with pytest.raises(ConfigError, match=field):
        RetryPolicy(**kwargs)


def test_huge_retry_numbers_do_not_overflow() -> None:
    # GIVEN a steep multiplier
    policy = RetryPolicy(multiplier=1000.0)
    # WHEN asking for the cap of a very late retry
    # THEN it is simply max_delay
    assert policy.backoff_cap(10_000) == 5.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 10 ", 10.0),
        ("0", 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_delta_seconds(header: str | None, expected: float | None) -> None:
    # GIVEN a Retry-After header in delta-seconds form (or garbage)
    # WHEN parsing it
    # THEN whole seconds are read and anything else is ignored
    assert parse_retry_after(header, now=0.0) == expected


def test_parse_retry_after_http_date() -> None:
    # GIVEN a Retry-After HTTP-date 30 s ahead of now, and one in the past
    when = parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT")
    header = format_datetime(when, usegmt=True)
    # WHEN parsing them
    # THEN the wait is the distance to that date, never negative
    assert parse_retry_after(header, now=when.timestamp() - 30) == pytest.approx(30.0)
    assert parse_retry_after(header, now=when.timestamp() + 30) == 0.0


def test_after_attempts_is_singular_for_one() -> None:
    # GIVEN one and several attempts
    # WHEN phrasing them
    # THEN the noun agrees
    assert after_attempts(1) == "after 1 attempt"
    assert after_attempts(5) == "after 5 attempts"


# --- a step that meets an outage ------------------------------------------------------------------


def test_a_step_is_run_again_through_an_outage_with_growing_waits() -> None:
    # GIVEN a step that meets an unavailable database four times, then succeeds
    calls: list[int] = []
    waits: list[float] = []

    def step() -> None:
        calls.append(1)
        if len(calls) <= 4:
            raise Unavailable("PostgreSQL is unavailable: connection refused")

    # WHEN it runs with plenty of time left
    through_outages(step, deadline=time.monotonic() + 3600, sleep=waits.append)
    # THEN it ran five times, waiting 0.5 s doubling up to the 5 s cap in between
    assert len(calls) == 5
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_an_outage_past_the_deadline_or_at_shutdown_is_raised_and_other_errors_at_once() -> None:
    def down() -> None:
        raise Unavailable("SQLite is busy: database is locked")

    # WHEN the deadline is too near for the next wait, or the process is stopping
    # THEN the outage is raised, for the queue to redeliver
    with pytest.raises(Unavailable):
        through_outages(down, deadline=time.monotonic(), sleep=lambda _: None)
    with pytest.raises(Unavailable):
        through_outages(down, deadline=time.monotonic() + 3600, stopping=lambda: True, sleep=lambda _: None)
    # AND an error that is not an outage is never run again
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise StorageError("COS put failed: HTTP 403 AccessDenied")

    with pytest.raises(StorageError):
        through_outages(broken, deadline=time.monotonic() + 3600, sleep=lambda _: None)
    assert len(calls) == 1
