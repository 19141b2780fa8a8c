"""Queue adapter for CKafka, published through Tencent Cloud API 3.0 `ckafka` SendMessage.

SendMessage is CKafka's "HTTP access layer": it needs no Kafka client and no VPC route to the
brokers, only a DataHub access ID per topic and the function's execution-role credentials. SCF's
CKafka trigger then delivers the records to the worker and finalizer functions.

The Tencent SDK is imported only here, so nothing else pays for it unless HARVEST_QUEUE=ckafka.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from tencentcloud.ckafka.v20190819 import ckafka_client, models
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from harvest.adapters.role_keys import KeySource, SdkCredential, fixed_keys
from harvest.domain.job import TOPIC_CALLBACK, TOPIC_FINALIZE, TOPIC_WORK, Message
from harvest.errors import ConfigError, QueueError, RetryableError
from harvest.settings import Settings

MAX_MESSAGES_PER_REQUEST = 500  # SendMessage's documented limit
REQUEST_TIMEOUT_SECONDS = 10

# SDK error codes worth another attempt later: throttling and transport failures. Anything else
# (bad credentials, unknown DataHubId, malformed request) will fail the same way next time.
_RETRYABLE_CODES = frozenset(
    {"ClientNetworkError", "ServerNetworkError", "InternalError", "ServiceUnavailable"}
)
_LOCAL_HOSTS = ("127.0.0.1", "localhost")
# What API 3.0 answers when a role's temporary keys have expired or been replaced (its common error
# codes: docs/platform/api3.md, "Common error codes"). Worth one immediate retry with the keys read
# again; if they are still the stale ones, the queue's redelivery retries later, with the next
# invocation's keys.
EXPIRED_TOKEN_CODES = frozenset({"AuthFailure.TokenFailure", "AuthFailure.SecretIdNotFound"})


class SendMessageClient(Protocol):
    """The one method of CkafkaClient this adapter uses."""

    def SendMessage(self, request: models.SendMessageRequest) -> models.SendMessageResponse: ...


def _is_retryable(code: str) -> bool:
    return code in _RETRYABLE_CODES or code.startswith("RequestLimitExceeded")


def _http_profile(endpoint: str) -> HttpProfile:
    if not endpoint:
        return HttpProfile(reqTimeout=REQUEST_TIMEOUT_SECONDS, keepAlive=True)
    scheme, sep, rest = endpoint.partition("://")
    host = rest if sep else endpoint
    if not sep:
        # Plain HTTP only for a stand-in on this machine; anything else keeps TLS.
        scheme = "http" if host.rsplit(":", 1)[0] in _LOCAL_HOSTS else "https"
    # The SDK sends (and signs) `endpoint` verbatim as the Host header: it must carry no scheme.
    return HttpProfile(protocol=scheme, endpoint=host, reqTimeout=REQUEST_TIMEOUT_SECONDS, keepAlive=True)


class CKafkaQueue:
    """ports.Queue over CKafka: each topic maps to the DataHub access ID of its CKafka topic."""

    def __init__(
        self, client: SendMessageClient, datahub_ids: Mapping[str, str], keys: KeySource | None = None
    ) -> None:
        """`keys` tells whether temporary keys (with a token) sign the requests: only then is an
        authentication failure possibly an expired token worth retrying."""
        self._client = client
        self._datahub_ids = dict(datahub_ids)
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: Settings, keys: KeySource | None = None) -> CKafkaQueue:
        """`keys` are read at every request (the role's rotating keys); default: the settings' keys."""
        keys = keys or fixed_keys(settings.cloud_secret_id, settings.cloud_secret_key, settings.cloud_token)
        now = keys()
        missing = [
            name
            for name, value in (
                ("HARVEST_CKAFKA_DATAHUB_ID", settings.ckafka_datahub_id),
                ("HARVEST_CKAFKA_FINALIZE_DATAHUB_ID", settings.ckafka_finalize_datahub_id),
                ("TENCENTCLOUD_SECRETID", now.secret_id),
                ("TENCENTCLOUD_SECRETKEY", now.secret_key),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"HARVEST_QUEUE=ckafka needs {', '.join(missing)} (SCF sets the TENCENTCLOUD_* ones"
                " when the function has an execution role)"
            )
        # Not the SDK's environment credential: it reads TENCENTCLOUD_SECRET_ID (with an underscore)
        # and no token, once; SCF injects TENCENTCLOUD_SECRETID/SECRETKEY/SESSIONTOKEN, which rotate.
        profile = ClientProfile(httpProfile=_http_profile(settings.tencent_api_endpoint))
        client = ckafka_client.CkafkaClient(SdkCredential(keys), settings.region, profile)
        return cls(
            client,
            {
                TOPIC_WORK: settings.ckafka_datahub_id,
                TOPIC_FINALIZE: settings.ckafka_finalize_datahub_id,
                # A topic of its own keeps a slow receiver away from finalize messages; without one,
                # the finalizer function delivers callbacks from the finalize topic.
                TOPIC_CALLBACK: settings.ckafka_callback_datahub_id or settings.ckafka_finalize_datahub_id,
            },
            keys,
        )

    def publish(self, messages: Sequence[Message]) -> None:
        """Send in order: consecutive messages of one topic share requests of at most 500."""
        for topic, batch in self._batches(messages):
            self._send(topic, batch)

    def _batches(self, messages: Sequence[Message]) -> list[tuple[str, list[Message]]]:
        batches: list[tuple[str, list[Message]]] = []
        for message in messages:
            if message.topic not in self._datahub_ids:
                raise QueueError(f"no CKafka DataHub ID configured for topic {message.topic!r}")
            if batches and batches[-1][0] == message.topic and len(batches[-1][1]) < MAX_MESSAGES_PER_REQUEST:
                batches[-1][1].append(message)
            else:
                batches.append((message.topic, [message]))
        return batches

    def _send(self, topic: str, batch: Sequence[Message]) -> None:
        request = models.SendMessageRequest()
        request.DataHubId = self._datahub_ids[topic]
        request.Message = [self._content(message) for message in batch]
        try:
            try:
                self._client.SendMessage(request)
            except TencentCloudSDKException as exc:
                if not self._maybe_expired(exc):
                    raise
                # The SDK reads the keys again for this second request.
                self._client.SendMessage(request)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "")
            detail = (
                f"CKafka SendMessage to {topic!r} failed: {code}: {exc.get_message()}"
                f" (RequestId {exc.get_request_id()})"
            )
            if _is_retryable(code) or self._maybe_expired(exc):
                raise RetryableError(detail) from exc
            raise QueueError(detail) from exc

    def _maybe_expired(self, exc: TencentCloudSDKException) -> bool:
        return (
            self._keys is not None
            and bool(self._keys().token)
            and str(exc.get_code() or "") in EXPIRED_TOKEN_CODES
        )

    @staticmethod
    def _content(message: Message) -> models.BatchContent:
        content = models.BatchContent()
        content.Body = json.dumps(message.body, separators=(",", ":"))
        # The key picks the partition: one job's messages stay in order on one partition.
        content.Key = message.key or str(message.body.get("job_id", ""))
        return content
