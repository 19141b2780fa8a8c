"""CKafkaQueue through the real Tencent SDK against a local, signature-checking CKafka API stand-in:
configuration, errors and batching. That every message reaches the functions as it was sent (the
trigger's events included) is the cross-backend suite's: tests/contract/test_queue_backends_contract.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tencentcloud.ckafka.v20190819 import ckafka_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tests.support.tencent_api_standin import MAX_MESSAGE_BYTES, ReceivedMessage, TencentApiStandIn

from harvest.adapters.ckafka import MAX_MESSAGES_PER_REQUEST, CKafkaQueue
from harvest.domain.job import (
    TOPIC_WORK,
    Message,
    callback_message,
    chunk_message,
    finalize_message,
    plan_message,
)
from harvest.errors import ConfigError, QueueError, RetryableError
from harvest.settings import Settings

WORK_HUB = "datahub-work"
FINALIZE_HUB = "datahub-finalize"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TencentApiStandIn]:
    # The SDK honours HTTP(S)_PROXY; the stand-in is on this machine.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with TencentApiStandIn(datahub_ids=(WORK_HUB, FINALIZE_HUB)) as standin:
        yield standin


def settings_for(
    api: TencentApiStandIn, secret_key: str | None = None, endpoint: str | None = None
) -> Settings:
    return Settings(
        region="ap-singapore",
        queue_backend="ckafka",
        ckafka_datahub_id=WORK_HUB,
        ckafka_finalize_datahub_id=FINALIZE_HUB,
        tencent_api_endpoint=endpoint or api.endpoint,
        cloud_secret_id=api.secret_id,
        cloud_secret_key=secret_key or api.secret_key,
        cloud_token="scf-session-token",
    )


def as_pairs(received: list[ReceivedMessage]) -> list[tuple[dict[str, Any], str]]:
    return [(json.loads(m.body), m.key) for m in received]


def test_published_messages_arrive_in_order_on_their_topics_datahub(api: TencentApiStandIn) -> None:
    # GIVEN a queue built from settings, pointed at the stand-in
    queue = CKafkaQueue.from_settings(settings_for(api))
    messages = [
        plan_message("job-a"),
        chunk_message("job-a", 0),
        finalize_message("job-b"),
        chunk_message("job-a", 1),
    ]
    # WHEN they are published
    queue.publish(messages)
    # THEN each topic's DataHub got exactly its messages, in order, with the job ID as key
    assert as_pairs(api.received(WORK_HUB)) == [
        ({"kind": "plan", "job_id": "job-a"}, "job-a"),
        ({"kind": "chunk", "job_id": "job-a", "chunk": 0}, "job-a"),
        ({"kind": "chunk", "job_id": "job-a", "chunk": 1}, "job-a"),
    ]
    assert as_pairs(api.received(FINALIZE_HUB)) == [({"kind": "finalize", "job_id": "job-b"}, "job-b")]
    # AND the SCF session token went along with the signed requests
    calls = api.send_message_calls()
    assert calls
    assert all(call.headers.get("x-tc-token") == "scf-session-token" for call in calls)
    assert all(call.headers.get("x-tc-region") == "ap-singapore" for call in calls)


def test_callbacks_travel_on_their_own_topic_or_else_on_the_finalize_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a CKafka with a third topic for callbacks
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with TencentApiStandIn(datahub_ids=(WORK_HUB, FINALIZE_HUB, "datahub-callback")) as standin:
        plain = settings_for(standin)
        own = Settings(**{**plain.__dict__, "ckafka_callback_datahub_id": "datahub-callback"})
        # WHEN a job's callback message is published without, then with, a callback DataHub configured
        CKafkaQueue.from_settings(plain).publish([callback_message("job-a")])
        CKafkaQueue.from_settings(own).publish([callback_message("job-b")])
        # THEN the first went to the finalize topic (the finalizer delivers it), the second to its own
        finalize = as_pairs(standin.received(FINALIZE_HUB))
        assert finalize == [({"kind": "callback", "job_id": "job-a"}, "job-a")]
        assert as_pairs(standin.received("datahub-callback")) == [
            ({"kind": "callback", "job_id": "job-b"}, "job-b")
        ]


def test_a_wrong_secret_key_is_a_queue_error_naming_the_signature_failure(api: TencentApiStandIn) -> None:
    # GIVEN a queue whose secret key the endpoint does not know
    queue = CKafkaQueue.from_settings(settings_for(api, secret_key="not-the-right-key"))
    # WHEN it publishes
    with pytest.raises(QueueError) as caught:
        queue.publish([plan_message("job-a")])
    # THEN the error is a plain (not retryable) QueueError carrying the API's code; nothing was recorded
    assert not isinstance(caught.value, RetryableError)
    assert "AuthFailure.SignatureFailure" in caught.value.message
    assert api.received(WORK_HUB) == []


def test_more_than_500_messages_are_split_into_requests_of_at_most_500(api: TencentApiStandIn) -> None:
    # GIVEN 1201 work messages
    queue = CKafkaQueue.from_settings(settings_for(api))
    messages = [chunk_message("job-big", i) for i in range(1201)]
    # WHEN they are published
    queue.publish(messages)
    # THEN they went in three requests of 500, 500 and 201, and all arrived in order
    sizes = [len(call.params["Message"]) for call in api.send_message_calls()]
    assert sizes == [MAX_MESSAGES_PER_REQUEST, MAX_MESSAGES_PER_REQUEST, 201]
    assert [json.loads(m.body)["chunk"] for m in api.received(WORK_HUB)] == list(range(1201))


def test_throttling_is_retryable_and_the_next_publish_succeeds(api: TencentApiStandIn) -> None:
    # GIVEN an endpoint that throttles the next request
    queue = CKafkaQueue.from_settings(settings_for(api))
    api.answer_error_next("RequestLimitExceeded", "Your current request times equals to `50` in a second")
    # WHEN a message is published
    with pytest.raises(RetryableError) as caught:
        queue.publish([plan_message("job-a")])
    # THEN the error says to retry, and the cause is the SDK's exception
    assert "RequestLimitExceeded" in caught.value.message
    assert caught.value.__cause__ is not None
    # AND publishing again (as the outbox relay will) delivers it
    queue.publish([plan_message("job-a")])
    assert as_pairs(api.received(WORK_HUB)) == [({"kind": "plan", "job_id": "job-a"}, "job-a")]


def test_an_unreachable_endpoint_is_retryable(api: TencentApiStandIn) -> None:
    # GIVEN an endpoint nobody listens on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    queue = CKafkaQueue.from_settings(settings_for(api, endpoint=closed))
    # WHEN publishing THEN it is a network error worth retrying
    with pytest.raises(RetryableError, match="ClientNetworkError"):
        queue.publish([plan_message("job-a")])


def test_an_unknown_datahub_is_a_queue_error(api: TencentApiStandIn) -> None:
    settings = settings_for(api)
    queue = CKafkaQueue.from_settings(
        Settings(**{**settings.__dict__, "ckafka_finalize_datahub_id": "datahub-deleted"})
    )
    with pytest.raises(QueueError, match="ResourceNotFound"):
        queue.publish([finalize_message("job-a")])


def test_a_message_larger_than_the_topic_takes_is_a_queue_error_not_a_retry(api: TencentApiStandIn) -> None:
    # GIVEN a message bigger than the topic's largest (bodies are IDs only; nothing the service builds
    # comes near it)
    queue = CKafkaQueue.from_settings(settings_for(api))
    blob = "x" * MAX_MESSAGE_BYTES
    too_big = Message(TOPIC_WORK, {"kind": "chunk", "job_id": "job-a", "chunk": 0, "blob": blob}, "job-a")
    # WHEN it is published THEN CKafka refuses it, the adapter says so without asking for a retry
    # (the same message would be refused again), and nothing was recorded
    with pytest.raises(QueueError) as caught:
        queue.publish([too_big])
    assert not isinstance(caught.value, RetryableError)
    assert "InvalidParameterValue" in caught.value.message
    assert "at most" in caught.value.message
    assert api.received(WORK_HUB) == []


def test_from_settings_names_every_missing_setting() -> None:
    # GIVEN ckafka chosen but nothing configured
    with pytest.raises(ConfigError) as caught:
        CKafkaQueue.from_settings(Settings(queue_backend="ckafka"))
    # THEN the error lists what to set
    for name in ("HARVEST_CKAFKA_DATAHUB_ID", "HARVEST_CKAFKA_FINALIZE_DATAHUB_ID", "TENCENTCLOUD_SECRETID"):
        assert name in caught.value.message


def test_the_standin_refuses_a_request_of_more_than_500_messages(api: TencentApiStandIn) -> None:
    # GIVEN the plain SDK client (no batching) and 501 messages in one request
    client = ckafka_client.CkafkaClient(
        credential.Credential(api.secret_id, api.secret_key),
        "ap-singapore",
        ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=api.endpoint)),
    )
    request = models.SendMessageRequest()
    request.DataHubId = WORK_HUB
    request.Message = []
    for i in range(501):
        content = models.BatchContent()
        content.Body, content.Key = f"{{\"n\":{i}}}", "k"
        request.Message.append(content)
    # WHEN it is sent THEN the stand-in answers the API error and records nothing
    with pytest.raises(TencentCloudSDKException) as caught:
        client.SendMessage(request)
    assert caught.value.get_code() == "InvalidParameterValue"
    assert api.received(WORK_HUB) == []
