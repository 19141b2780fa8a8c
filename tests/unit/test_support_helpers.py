"""The shared test helpers in tests/support: a helper that passed vacuously would hide failures."""

from __future__ import annotations

import json
import time

import pytest
import requests
from tests.support.callback_receiver import Answer, CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.polling import eventually
from tests.support.signing import live_event_sign, live_event_signed

from harvest.usecases.live_events import verify_signature


def test_eventually_returns_the_first_truthy_value() -> None:
    # GIVEN a condition that holds on its third poll
    polls = iter([None, "", "ready", "later"])
    # WHEN waited for THEN the value it held is returned
    assert eventually(lambda: next(polls), 5, "the third poll", interval=0) == "ready"


def test_eventually_fails_naming_what_it_waited_for_and_the_last_value() -> None:
    # GIVEN a condition that never holds, and a description built at the moment of failure
    asked: list[float] = []

    def described() -> str:
        asked.append(time.monotonic())
        return "the never-ready thing"

    started = time.monotonic()
    # WHEN waited for briefly THEN an AssertionError names it and the last value seen
    with pytest.raises(
        AssertionError, match=r"timed out after 0.2 s waiting for the never-ready thing \(last: 0\)"
    ):
        eventually(lambda: 0, 0.2, described, interval=0.01)
    assert len(asked) == 1
    assert asked[0] - started >= 0.2


def test_the_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(100.0)
    assert clock() == clock() == 100.0
    clock.advance(2.5)
    assert clock() == 102.5


def test_the_callback_receiver_answers_from_its_script_and_keeps_every_request() -> None:
    with CallbackReceiver(unscripted=Answer(404)) as receiver:
        # GIVEN a path scripted to fail once, then redirect
        url = receiver.script("/hook", Answer(500), Answer(302, {"Location": "http://127.0.0.1:9/x"}))
        # WHEN it is posted three times, and another path once
        answers = [requests.post(url, json={"ID": "a"}, allow_redirects=False, timeout=5) for _ in range(3)]
        statuses = [answer.status_code for answer in answers]
        other = requests.post(receiver.url("/other"), data=b"not json", timeout=5).status_code
    # THEN the script is played in turn (its last answer repeats), other paths get the default
    assert statuses == [500, 302, 302]
    assert other == 404
    # AND every request is kept, its JSON body readable (an unreadable one shown as text)
    assert receiver.count("/hook") == 3
    assert receiver.received()[0] == ("/hook", {"ID": "a"})
    assert receiver.received()[-1] == ("/other", {"unreadable": "not json"})
    assert json.loads(receiver.requests()[0].body) == {"ID": "a"}


def test_the_live_event_sign_is_what_the_verifier_accepts() -> None:
    # md5("key" + "1700000000"), computed once by hand with `printf key1700000000 | md5sum`
    assert live_event_sign("key", 1_700_000_000) == "06d851185e908b68ddf9a345983ed7b3"
    verify_signature(live_event_signed({}, 1_700_000_600, "key"), "key", 1_700_000_000)
