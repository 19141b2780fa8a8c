"""Where a harvest goes: the COS Destination URL and the object keys under it.

Destination is a COS URL, `https://<name>-<appid>.cos.<region>.myqcloud.com/<prefix>` (or the newer
`.tencentcos.cn` domain). It is parsed once into a CosLocation; object keys (the prefix, Manifest)
follow one set of rules so that no key can climb out of its prefix or hide a character that the
bucket, a shell or a log would read differently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from harvest.domain.timeparse import shown
from harvest.errors import VALUE_REFUSED, FieldError

MAX_KEY_BYTES = 1024
# Bucket = <name>-<appid>; COS keeps `<bucket>` within 50 characters.
MAX_BUCKET_CHARS = 50
HOST_SUFFIXES = ("myqcloud.com", "tencentcos.cn")
_HOST = re.compile(
    r"(?P<name>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-(?P<appid>[0-9]+)"
    r"\.cos\.(?P<region>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<suffix>myqcloud\.com|tencentcos\.cn)"
)


@dataclass(frozen=True)
class CosLocation:
    bucket: str  # <name>-<appid>
    region: str
    prefix: str  # "" or ends with "/"; never starts with "/"
    host_suffix: str = "myqcloud.com"

    @property
    def host(self) -> str:
        return f"{self.bucket}.cos.{self.region}.{self.host_suffix}"

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def url(self, relative: str = "") -> str:
        return f"https://{self.host}/{self.key(relative)}"


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def normalize_key(key: str, field: str, *, allow_empty: bool = False) -> str:
    """A relative object key with '//' and './' folded away.

    FieldError (InvalidParameter.<field>) when the key is unsafe: control characters, backslashes,
    a leading '/', a '..' segment, more than 1024 bytes of UTF-8, or nothing left after folding.
    """
    if _has_control(key):
        raise FieldError(field, f"{field} {shown(key)} contains a control character")
    if "\\" in key:
        raise FieldError(field, f"{field} {shown(key)} contains a backslash; use '/' between parts")
    if key.startswith("/"):
        raise FieldError(field, f"{field} {shown(key)} must be relative: remove the leading '/'")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise FieldError(field, f"{field} is longer than {MAX_KEY_BYTES} bytes (UTF-8)")
    parts = key.split("/")
    if ".." in parts:
        raise FieldError(field, f"{field} {shown(key)} contains a '..' segment")
    trailing_slash = key.endswith("/")
    kept = [part for part in parts if part not in ("", ".")]
    normalized = "/".join(kept) + ("/" if trailing_slash and kept else "")
    if not normalized and not allow_empty:
        raise FieldError(field, f"{field} {shown(key)} names no object once '//' and './' are folded away")
    return normalized


def normalize_manifest(manifest: str) -> str:
    """The Manifest as an object key under the Destination prefix."""
    key = normalize_key(manifest, "Manifest")
    if key.endswith("/"):
        raise FieldError(
            "Manifest", f"Manifest {shown(manifest)} names a folder; give a file name such as 'index.m3u8'"
        )
    return key


def normalize_prefix(prefix: str, field: str = "Destination") -> str:
    """'' or a key prefix ending with '/'."""
    key = normalize_key(prefix, field, allow_empty=True)
    return key if not key or key.endswith("/") else key + "/"


def parse_destination(url: str, region: str, allowed_buckets: Sequence[str] = ()) -> CosLocation:
    """Parse a COS Destination URL; FieldError naming the rule when it is not one we may write to.

    Codes: InvalidParameter (not a COS URL), InvalidParameterValue (a bucket in another region,
    or one not in `allowed_buckets`).
    """
    authority, slash, path = _split_url(url)
    match = _bucket_host(authority)
    bucket = f"{match['name']}-{match['appid']}"
    _check_bucket(bucket, match["region"], region, allowed_buckets)
    return CosLocation(
        bucket=bucket, region=match["region"], prefix=_prefix(path, slash), host_suffix=match["suffix"]
    )


def _split_url(url: str) -> tuple[str, str, str]:
    """(authority, '/' or '', path) of an https URL with no query, fragment, user or port."""
    field = "Destination"
    example = "https://<name>-<appid>.cos.<region>.myqcloud.com/<prefix>"
    if _has_control(url) or " " in url:
        raise FieldError(field, f"Destination {shown(url)} contains a space or control character")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "https":
        raise FieldError(field, f"Destination {shown(url)} must be a COS URL like {example}")
    if "?" in rest or "#" in rest:
        raise FieldError(field, "Destination must not carry a query string or fragment")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        raise FieldError(field, "Destination must not carry user information ('user@')")
    if ":" in authority:
        raise FieldError(field, "Destination must not carry a port: COS listens on the default HTTPS port")
    return authority, slash, path


def _bucket_host(authority: str) -> re.Match[str]:
    match = _HOST.fullmatch(authority)
    if match is None:
        raise FieldError(
            "Destination",
            f"Destination host {shown(authority)} is not a COS bucket host like"
            f" <name>-<appid>.cos.<region>.myqcloud.com (name: lowercase a-z, 0-9 and '-', appid: digits)",
        )
    return match


def _check_bucket(bucket: str, bucket_region: str, region: str, allowed_buckets: Sequence[str]) -> None:
    """The bucket is one this service may write to: a valid name, in its region, on its list if any."""
    field = "Destination"
    if len(bucket) > MAX_BUCKET_CHARS:
        raise FieldError(
            field, f"Destination bucket {shown(bucket)} is longer than {MAX_BUCKET_CHARS} characters"
        )
    if bucket_region != region:
        raise FieldError(
            field,
            f"Destination bucket is in region {bucket_region!r}; this service writes only to {region!r}",
            code=VALUE_REFUSED,
        )
    if allowed_buckets and bucket not in allowed_buckets:
        raise FieldError(
            field,
            f"Destination bucket {bucket!r} is not one this service may write to",
            code=VALUE_REFUSED,
        )


def _prefix(path: str, slash: str) -> str:
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise FieldError("Destination", "Destination path is not valid percent-encoded UTF-8") from None
    # A leading '//' after the host is an empty segment, folded away like any other.
    return normalize_prefix(decoded.lstrip("/") if slash else "", "Destination")
