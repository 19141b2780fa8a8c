"""The one request signer of the tests: TC3-HMAC-SHA256 for the API, the CSS/StreamLive sign for live events.

`signed_headers` signs as the SDK does (by harvest.api.tc3.sign_request, itself checked against
the SDK in tests/unit/test_tc3.py), with the test key pair for mdp 2020-05-27 in the test region
unless told otherwise. `live_event_sign` is computed here independently of the code under test
(md5 of the callback key followed by the expiry `t`), so a test fails if the verifier drifts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from harvest.api.tc3 import sign_request
from harvest.handlers.api import API_VERSION

SECRET_ID = "AKIDtest"
SECRET_KEY = "secret"
REGION = "ap-singapore"


def signed_headers(host: str, action: str, body: bytes, **options: Any) -> dict[str, str]:
    """Headers of a TC3-signed request to `host`; `options` override the test key pair, region and
    version, or add what sign_request takes (method, query, content_type, timestamp, token...)."""
    signing: dict[str, Any] = {
        "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY,
        "version": API_VERSION,
        "region": REGION,
        **options,
    }
    return sign_request(host=host, action=action, body=body, **signing)


def live_event_sign(key: str, t: int) -> str:
    """A live event's `sign`: md5(key + str(t)) in hex, as CSS and StreamLive compute it."""
    return hashlib.md5(f"{key}{t}".encode()).hexdigest()


def live_event_signed(fields: Mapping[str, Any], t: int, key: str) -> dict[str, Any]:
    """`fields` with the expiry `t` and its `sign` added."""
    return {**fields, "t": t, "sign": live_event_sign(key, t)}
