"""ports.ObjectStore on Tencent Cloud COS, through cos-python-sdk-v5.

Every write is checked end to end: the SDK sends Content-MD5 so COS refuses a body damaged on the way,
the returned ETag must be the MD5 we computed (per part for multipart uploads), and a HEAD after the
write must report the length we sent. An object the harvester reports as written is therefore the
object it meant to write.

SDK failures become named errors here and nowhere else: throttling, 5xx and transport failures are
`Unavailable` (the step waits for COS and runs again); a damaged write is `RetryableError` (the queue
redelivers the message); everything else is `StorageError`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from harvest.adapters.objectstore import check_bucket, check_key, check_prefix
from harvest.adapters.role_keys import CloudKeys, KeySource, fixed_keys
from harvest.errors import ConfigError, RetryableError, StorageError, Unavailable
from harvest.settings import Settings

MIN_PART_SIZE = 1024 * 1024  # COS refuses smaller parts, the last one excepted
MAX_PARTS = 10_000
MAX_LIST_PAGE = 1000  # COS's MaxKeys ceiling
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_READ_CHUNK = 1024 * 1024

# Codes COS documents as transient; any 5xx counts too.
_RETRYABLE_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "TooManyRequests"}
)
_MISSING_CODES = frozenset({"NoSuchResource", "NoSuchKey"})
# What COS answers for temporary keys that have expired or been replaced (the role's keys rotate):
# read the keys again and retry once; still stale, the queue's redelivery tries later.
# UNVERIFIED against a live account: COS's error-code page names ExpiredToken/InvalidAccessKeyId.
EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "InvalidAccessKeyId", "InvalidToken"})
# With SSE-KMS the ETag is not the body's MD5; Content-MD5 still guards the upload itself.
_ETAG_NOT_MD5 = "cos/kms"

T = TypeVar("T")
log = logging.getLogger(__name__)


class CosStore:
    def __init__(
        self,
        region: str,
        secret_id: str,
        secret_key: str,
        token: str = "",
        scheme: str = "https",
        ip: str | None = None,
        port: int | None = None,
        multipart_threshold: int = 16 * 1024 * 1024,
        part_size: int = DEFAULT_PART_SIZE,
        list_page_size: int = MAX_LIST_PAGE,
        sdk_retries: int = 3,
        timeout: float = 30.0,
        keys: KeySource | None = None,
    ) -> None:
        """`ip`/`port` send requests there with the proper `Host` header (a stand-in, in tests).

        `sdk_retries` is the SDK's own retry of network errors and 5xx within one call; the queue's
        redelivery is the outer retry. `keys`, when given, is read before every request (the role's
        rotating keys) and replaces `secret_id`/`secret_key`/`token`.
        """
        if part_size < MIN_PART_SIZE:
            raise ConfigError(f"COS part size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
        if multipart_threshold < 1:
            raise ConfigError("COS multipart threshold must be at least 1 byte")
        if not 1 <= list_page_size <= MAX_LIST_PAGE:
            raise ConfigError(f"COS list page size must be 1..{MAX_LIST_PAGE}, got {list_page_size}")
        self._keys = keys or fixed_keys(secret_id, secret_key, token)
        self._config_options = {"Region": region, "Scheme": scheme, "IP": ip or None, "Port": port or None}
        self._timeout = timeout
        self._sdk_retries = sdk_retries
        self._lock = threading.Lock()
        self._client_keys, self._current_client = self._keys(), None
        self._current_client = self._new_client(self._client_keys)
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size
        self._list_page_size = list_page_size

    def _new_client(self, keys: CloudKeys) -> CosS3Client:
        try:
            config = CosConfig(
                SecretId=keys.secret_id,
                SecretKey=keys.secret_key,
                Token=keys.token or None,
                Timeout=self._timeout,
                **self._config_options,
            )
        except CosClientError as exc:
            raise ConfigError(f"invalid COS configuration: {exc}") from exc
        return CosS3Client(config, retry=self._sdk_retries)

    @property
    def _client(self) -> CosS3Client:
        """A client signing with the keys in force now; a new one when they have changed.

        A client's keys never change under a request in flight on another thread (CosConfig's
        set_credential would swap the three values one by one).
        """
        keys = self._keys()
        with self._lock:
            if keys != self._client_keys:
                self._current_client = self._new_client(keys)
                self._client_keys = keys
            return self._current_client

    @classmethod
    def from_settings(cls, settings: Settings, keys: KeySource | None = None) -> CosStore:
        """`keys` are read before every request (the role's rotating keys); default: the settings' keys."""
        keys = keys or fixed_keys(settings.cloud_secret_id, settings.cloud_secret_key, settings.cloud_token)
        now = keys()
        missing = [
            name
            for name, value in (
                ("TENCENTCLOUD_SECRETID", now.secret_id),
                ("TENCENTCLOUD_SECRETKEY", now.secret_key),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"HARVEST_OBJECT_STORE=cos needs {', '.join(missing)} "
                "(SCF sets them from the function's execution role)"
            )
        return cls(
            region=settings.region,
            secret_id=settings.cloud_secret_id,
            secret_key=settings.cloud_secret_key,
            token=settings.cloud_token,
            scheme=settings.cos_scheme,
            ip=settings.cos_endpoint_ip or None,
            port=settings.cos_endpoint_port or None,
            multipart_threshold=settings.cos_multipart_threshold,
            part_size=max(MIN_PART_SIZE, min(DEFAULT_PART_SIZE, settings.cos_multipart_threshold)),
            keys=keys,
        )

    # --- ports.ObjectStore ------------------------------------------------------------------------

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        check_bucket(bucket)
        check_key(key)
        if len(data) > self._multipart_threshold:
            self._put_multipart(bucket, key, data, content_type)
        else:
            response = self._call(
                f"put {bucket}/{key}",
                partial(
                    CosS3Client.put_object,
                    Bucket=bucket,
                    Key=key,
                    Body=data,
                    EnableMD5=True,
                    ContentType=content_type,
                ),
            )
            etag = _check_etag(response, hashlib.md5(data).hexdigest(), f"{bucket}/{key}")
            if not _etag_is_md5(response, etag):
                # Without an MD5 ETag (SSE-KMS) only a HEAD can confirm the stored size. With one,
                # COS has checked the whole body against it: no HEAD per segment.
                self._check_stored(bucket, key, len(data))
            return
        self._check_stored(bucket, key, len(data))

    def _check_stored(self, bucket: str, key: str, written: int) -> None:
        stored = self.size(bucket, key)
        if stored != written:
            raise RetryableError(f"COS object {bucket}/{key} holds {stored} bytes after writing {written}")

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        """Write an object from chunks, holding at most the multipart threshold (then a part) in memory.

        Up to the threshold it is one PUT, as `put`; past it, a multipart upload sent part by part as
        the chunks arrive. An exception from `chunks` aborts the upload and is passed on untouched.
        """
        check_bucket(bucket)
        check_key(key)
        remaining = iter(chunks)
        head = bytearray()
        for chunk in remaining:
            head += chunk
            if len(head) > self._multipart_threshold:
                break
        else:
            self.put(bucket, key, bytes(head), content_type)
            return len(head)
        parts = _rechunked(head, remaining, self._part_size)
        total = self._upload_parts(bucket, key, content_type, parts)
        self._check_stored(bucket, key, total)
        return total

    def sync(self, bucket: str, keys: Sequence[str]) -> None:
        """Nothing to do: COS has stored an object durably once its PUT is answered."""

    def size(self, bucket: str, key: str) -> int | None:
        check_bucket(bucket)
        check_key(key)
        try:
            headers = self._with_fresh_keys(partial(CosS3Client.head_object, Bucket=bucket, Key=key))
        except CosServiceError as exc:
            if exc.get_status_code() == 404 or exc.get_error_code() in _MISSING_CODES:
                return None
            raise self._translate(exc, f"head {bucket}/{key}") from exc
        except CosClientError as exc:
            raise self._translate(exc, f"head {bucket}/{key}") from exc
        return int(_header(headers, "Content-Length"))

    def get(self, bucket: str, key: str) -> bytes:
        check_bucket(bucket)
        check_key(key)
        what = f"get {bucket}/{key}"
        response = self._call(what, partial(CosS3Client.get_object, Bucket=bucket, Key=key))
        try:
            data = b"".join(response["Body"].get_stream(_READ_CHUNK))
        except OSError as exc:  # requests' errors are OSErrors: the connection broke mid-body
            raise RetryableError(f"COS {what} failed while reading the body: {exc}") from exc
        expected = int(_header(response, "Content-Length") or len(data))
        if len(data) != expected:
            raise RetryableError(f"COS {what} returned {len(data)} of {expected} bytes")
        return data

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        check_bucket(bucket)
        check_prefix(prefix)
        found: list[tuple[str, int]] = []
        marker = ""
        while True:
            page = self._call(
                f"list {bucket}/{prefix}",
                partial(
                    CosS3Client.list_objects,
                    Bucket=bucket,
                    Prefix=prefix,
                    Marker=marker,
                    MaxKeys=self._list_page_size,
                ),
            )
            contents = page.get("Contents", [])
            found.extend((item["Key"], int(item["Size"])) for item in contents)
            if page.get("IsTruncated") != "true" or not contents:
                break
            # COS sends NextMarker when truncated; the last key is the documented fallback.
            marker = page.get("NextMarker") or contents[-1]["Key"]
        found.sort()
        return found

    # --- internals --------------------------------------------------------------------------------

    def _put_multipart(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        # At most 10,000 parts: a huge object gets larger parts rather than failing.
        part_size = max(self._part_size, math.ceil(len(data) / MAX_PARTS))
        parts = (data[offset : offset + part_size] for offset in range(0, len(data), part_size))
        self._upload_parts(bucket, key, content_type, parts)

    def _upload_parts(self, bucket: str, key: str, content_type: str, bodies: Iterator[bytes]) -> int:
        """One multipart upload of `bodies` in order, each part's ETag checked; the bytes sent."""
        what = f"multipart put {bucket}/{key}"
        created = self._call(
            what,
            partial(CosS3Client.create_multipart_upload, Bucket=bucket, Key=key, ContentType=content_type),
        )
        upload_id = created["UploadId"]
        total = 0
        try:
            parts = []
            for number, body in enumerate(bodies, start=1):
                if number > MAX_PARTS:
                    raise StorageError(f"COS {what}: more than {MAX_PARTS} parts")
                response = self._call(
                    f"{what} part {number}",
                    partial(
                        CosS3Client.upload_part,
                        Bucket=bucket,
                        Key=key,
                        Body=body,
                        PartNumber=number,
                        UploadId=upload_id,
                        EnableMD5=True,
                    ),
                )
                etag = _check_etag(response, hashlib.md5(body).hexdigest(), f"{bucket}/{key} part {number}")
                parts.append({"PartNumber": number, "ETag": etag})
                total += len(body)
            self._call(
                what,
                partial(
                    CosS3Client.complete_multipart_upload,
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Part": parts},
                ),
            )
        except BaseException:
            self._abort(bucket, key, upload_id)
            raise
        return total

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        # Best effort: uploaded parts are billed until aborted (or a lifecycle rule removes them), but
        # the failure that brought us here is the one worth reporting.
        try:
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except (CosServiceError, CosClientError) as exc:
            log.warning("could not abort multipart upload %s of %s/%s: %s", upload_id, bucket, key, exc)

    def _call(self, what: str, operation: Callable[[CosS3Client], T]) -> T:
        try:
            return self._with_fresh_keys(operation)
        except (CosServiceError, CosClientError) as exc:
            raise self._translate(exc, what) from exc

    def _with_fresh_keys(self, operation: Callable[[CosS3Client], T]) -> T:
        """Run `operation` on a client with the current keys; once more if COS says they expired."""
        try:
            return operation(self._client)
        except CosServiceError as exc:
            if not self._maybe_expired(exc):
                raise
            return operation(self._client)  # `_client` reads the keys again

    def _maybe_expired(self, exc: CosServiceError) -> bool:
        return bool(self._keys().token) and exc.get_error_code() in EXPIRED_TOKEN_CODES

    def _translate(self, exc: CosServiceError | CosClientError, what: str) -> StorageError | RetryableError:
        if isinstance(exc, CosServiceError) and self._maybe_expired(exc):
            return RetryableError(
                f"COS {what} failed: {exc.get_error_code()}: the role's temporary keys were refused"
                " twice (expired); the next delivery retries with fresh ones"
            )
        return _translate(exc, what)


def _rechunked(head: bytearray, rest: Iterator[bytes], size: int) -> Iterator[bytes]:
    """`head` then `rest`, cut into parts of exactly `size` bytes (the last one shorter)."""
    buffer = head
    while True:
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
        chunk = next(rest, None)
        if chunk is None:
            break
        buffer += chunk
    if buffer:
        yield bytes(buffer)


def _check_etag(response: Any, md5_hex: str, what: str) -> str:
    """The ETag COS returned, after checking it is the MD5 of what we sent."""
    etag = _header(response, "ETag")
    if _header(response, "x-cos-server-side-encryption") == _ETAG_NOT_MD5:
        return etag
    if etag.strip('"').lower() != md5_hex:
        raise RetryableError(f"COS {what}: ETag {etag!r} is not the MD5 of the data sent ({md5_hex})")
    return etag


def _etag_is_md5(response: Any, etag: str) -> bool:
    return bool(etag) and _header(response, "x-cos-server-side-encryption") != _ETAG_NOT_MD5


def _header(headers: Mapping[str, Any], name: str) -> str:
    """A response header by name in any case: the SDK hands back a plain dict of what the server sent."""
    wanted = name.lower()
    for header, value in headers.items():
        if header.lower() == wanted:
            return str(value)
    return ""


def _translate(exc: CosServiceError | CosClientError, what: str) -> StorageError | RetryableError:
    if isinstance(exc, CosClientError):
        # The SDK raises CosClientError for transport failures (timeouts, refused connections).
        return Unavailable(f"COS {what} failed: {exc}")
    status = int(exc.get_status_code())
    code = exc.get_error_code()
    message = f"COS {what} failed: HTTP {status} {code}: {exc.get_error_msg()}"
    if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return Unavailable(message)
    return StorageError(message)
