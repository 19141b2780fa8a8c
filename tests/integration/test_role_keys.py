"""The role's temporary keys rotate under a warm instance: COS and CKafka read them at every request,
and an expired-token answer is retried once with the keys read again (real SDKs, signature-checking
stand-ins)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.cos_server import CosServer
from tests.support.tencent_api_standin import TencentApiStandIn

from harvest.adapters.ckafka import CKafkaQueue
from harvest.adapters.objectstore.cos import CosStore
from harvest.adapters.role_keys import CloudKeys, environment_keys
from harvest.domain.job import plan_message
from harvest.errors import RetryableError
from harvest.settings import Settings

pytest_plugins = ("tests.support.cos_server",)


class Role:
    """What SCF's runtime puts in the environment: the role's keys of the moment."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.generation = 0
        self.rotate()

    def rotate(self) -> CloudKeys:
        self.generation += 1
        g = self.generation
        self.env.update(
            TENCENTCLOUD_SECRETID=f"AKIDrole{g:030d}",
            TENCENTCLOUD_SECRETKEY=f"role-key-{g}",
            TENCENTCLOUD_SESSIONTOKEN=f"token-{g}",
        )
        return environment_keys(self.env)()


@pytest.fixture
def ckafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[TencentApiStandIn]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with TencentApiStandIn() as standin:
        yield standin


def _accept(standin: TencentApiStandIn, keys: CloudKeys) -> None:
    standin.secret_id, standin.secret_key, standin.token = keys


def _queue(standin: TencentApiStandIn, role: Role) -> CKafkaQueue:
    """A queue on the role's keys in the environment, which the stand-in accepts for now."""
    _accept(standin, environment_keys(role.env)())
    settings = Settings(
        queue_backend="ckafka",
        ckafka_datahub_id="datahub-work",
        ckafka_finalize_datahub_id="datahub-finalize",
        tencent_api_endpoint=standin.endpoint,
    )
    return CKafkaQueue.from_settings(settings, environment_keys(role.env))


def test_ckafka_signs_each_request_with_the_keys_of_the_moment(ckafka: TencentApiStandIn) -> None:
    # GIVEN a queue built once, as a warm instance keeps it, on the role's keys in the environment
    role = Role()
    queue = _queue(ckafka, role)
    queue.publish([plan_message("job-1")])
    # WHEN the keys rotate (the old ones are refused from now on)
    _accept(ckafka, role.rotate())
    queue.publish([plan_message("job-2")])
    # THEN both were accepted, each signed and tokened with the keys in force when it was sent
    assert [call.headers["x-tc-token"] for call in ckafka.send_message_calls()] == ["token-1", "token-2"]


def test_ckafka_retries_an_expired_token_once_then_leaves_it_to_redelivery(ckafka: TencentApiStandIn) -> None:
    queue = _queue(ckafka, Role())
    # GIVEN CKafka answers the next request "token expired"
    ckafka.answer_error_next("AuthFailure.TokenFailure")
    # WHEN a message is published / THEN the keys are read again and the second request goes through
    queue.publish([plan_message("job-1")])
    assert len(ckafka.received("datahub-work")) == 1
    # AND when the keys stay stale, the failure is retryable (the next delivery has fresh keys)
    ckafka.answer_error_next("AuthFailure.TokenFailure", times=2)
    with pytest.raises(RetryableError, match="TokenFailure"):
        queue.publish([plan_message("job-2")])


def test_cos_signs_each_request_with_the_keys_of_the_moment_and_retries_an_expired_token(
    cos_server: CosServer,
) -> None:
    # GIVEN a store built once on the role's keys, which the COS stand-in accepts
    role = Role()
    keys = environment_keys(role.env)
    bucket = cos_server.create_bucket("role")
    credentials = cos_server.layer.credentials
    credentials[keys().secret_id] = keys().secret_key
    settings = Settings(
        object_store="cos",
        cos_endpoint_ip=cos_server.ip,
        cos_endpoint_port=cos_server.port,
        cos_scheme="http",
        region=cos_server.region,
    )
    store = CosStore.from_settings(settings, keys)
    store.put(bucket, "vod/a.ts", b"a" * 100, "video/mp2t")
    # WHEN the keys rotate and the old pair stops working
    old = keys()
    fresh = role.rotate()
    credentials[fresh.secret_id] = fresh.secret_key
    del credentials[old.secret_id]
    store.put(bucket, "vod/b.ts", b"b" * 100, "video/mp2t")
    # THEN the write went through with the new keys and token
    seen = [r for r in cos_server.requests_for(bucket) if r.method == "PUT"]
    assert seen[-1].headers.get("x-cos-security-token") == "token-2"
    # AND an "expired token" answer is retried once with the keys read again
    with cos_server.failing(lambda m, p, q: m == "PUT", status=400, code="ExpiredToken", times=1):
        store.put(bucket, "vod/c.ts", b"c" * 100, "video/mp2t")
    assert store.size(bucket, "vod/c.ts") == 100
    # AND one that persists is retryable, not a storage failure that would fail the job
    with (
        cos_server.failing(lambda m, p, q: m == "PUT", status=400, code="ExpiredToken", times=2),
        pytest.raises(RetryableError, match="ExpiredToken"),
    ):
        store.put(bucket, "vod/d.ts", b"d" * 100, "video/mp2t")
