"""Destination URLs and object keys: what is a COS location we may write to, and what is not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvest.domain.destination import (
    CosLocation,
    normalize_key,
    normalize_manifest,
    normalize_prefix,
    parse_destination,
)
from harvest.errors import FieldError

REGION = "ap-singapore"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod/news/",
            CosLocation("harvest-1250000000", REGION, "vod/news/", "myqcloud.com"),
        ),
        (
            "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod/news",
            CosLocation("harvest-1250000000", REGION, "vod/news/", "myqcloud.com"),
        ),
        (
            "https://harvest-1250000000.cos.ap-singapore.myqcloud.com",
            CosLocation("harvest-1250000000", REGION, "", "myqcloud.com"),
        ),
        (
            "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/",
            CosLocation("harvest-1250000000", REGION, "", "myqcloud.com"),
        ),
        (
            "https://my-vod-2-1250000000.cos.ap-singapore.tencentcos.cn//a/./b//",
            CosLocation("my-vod-2-1250000000", REGION, "a/b/", "tencentcos.cn"),
        ),
        (
            "HTTPS://harvest-1250000000.cos.ap-singapore.myqcloud.com/my%20show/",
            CosLocation("harvest-1250000000", REGION, "my show/", "myqcloud.com"),
        ),
    ],
)
def test_cos_urls_parse_into_bucket_region_and_prefix(url: str, expected: CosLocation) -> None:
    assert parse_destination(url, REGION) == expected


def test_location_rebuilds_urls_and_keys() -> None:
    location = parse_destination("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod", REGION)
    assert location.key("job/index.m3u8") == "vod/job/index.m3u8"
    assert location.url("job/index.m3u8") == (
        "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod/job/index.m3u8"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://harvest-1250000000.cos.ap-singapore.myqcloud.com/", "must be a COS URL"),
        ("cos://harvest-1250000000/vod", "must be a COS URL"),
        ("harvest-1250000000.cos.ap-singapore.myqcloud.com/vod", "must be a COS URL"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod?x=1", "query string"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod#top", "fragment"),
        ("https://user@harvest-1250000000.cos.ap-singapore.myqcloud.com/vod", "user information"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com:8443/vod", "port"),
        ("https://Harvest-1250000000.cos.ap-singapore.myqcloud.com/", "lowercase"),
        ("https://harvest_vod-1250000000.cos.ap-singapore.myqcloud.com/", "lowercase"),
        ("https://harvest.cos.ap-singapore.myqcloud.com/", "appid"),
        ("https://-harvest-1250000000.cos.ap-singapore.myqcloud.com/", "not a COS bucket host"),
        ("https://harvest-1250000000.cos.ap-singapore.example.com/", "not a COS bucket host"),
        ("https://harvest-1250000000.s3.amazonaws.com/", "not a COS bucket host"),
        ("https://" + "a" * 45 + "-1250000000.cos.ap-singapore.myqcloud.com/", "longer than 50"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/a/../b", "'..'"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/a%2F..%2Fb", "'..'"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/a\\b", "backslash"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/a%00b", "control character"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/a b", "space"),
        ("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/%ff", "percent-encoded UTF-8"),
    ],
)
def test_malformed_destinations_are_invalid_parameter(url: str, says: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_destination(url, REGION)
    assert caught.value.code == "InvalidParameter"
    assert "Destination" in caught.value.message
    assert says in caught.value.message


def test_a_bucket_in_another_region_is_refused() -> None:
    with pytest.raises(FieldError) as caught:
        parse_destination("https://harvest-1250000000.cos.ap-guangzhou.myqcloud.com/vod/", REGION)
    assert caught.value.code == "InvalidParameterValue"
    assert "ap-guangzhou" in caught.value.message
    assert REGION in caught.value.message


def test_allowed_buckets_limit_where_jobs_may_write() -> None:
    allowed = ("harvest-1250000000",)
    # GIVEN a list of allowed buckets THEN a listed bucket passes and another is refused
    assert parse_destination("https://harvest-1250000000.cos.ap-singapore.myqcloud.com/", REGION, allowed)
    with pytest.raises(FieldError) as caught:
        parse_destination("https://other-1250000000.cos.ap-singapore.myqcloud.com/", REGION, allowed)
    assert caught.value.code == "InvalidParameterValue"
    assert "other-1250000000" in caught.value.message


# --- object keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "key"),
    [
        ("index.m3u8", "index.m3u8"),
        ("job-1/index.m3u8", "job-1/index.m3u8"),
        ("a//b/./c.m3u8", "a/b/c.m3u8"),
        ("./c.m3u8", "c.m3u8"),
        ("节目/index.m3u8", "节目/index.m3u8"),
        ("a..b/c...m3u8", "a..b/c...m3u8"),
    ],
)
def test_manifest_keys_are_normalised(manifest: str, key: str) -> None:
    assert normalize_manifest(manifest) == key


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        ("", "names no object"),
        ("./", "names no object"),
        ("//", "relative"),
        ("/abs/index.m3u8", "relative"),
        ("../index.m3u8", "'..'"),
        ("a/../../index.m3u8", "'..'"),
        ("a\\index.m3u8", "backslash"),
        ("a\nb.m3u8", "control character"),
        ("a\x7fb.m3u8", "control character"),
        ("shows/", "folder"),
        ("节" * 342, "1024 bytes"),  # 1026 bytes of UTF-8 in 342 characters
    ],
)
def test_unsafe_manifests_are_invalid_parameter_manifest(manifest: str, says: str) -> None:
    with pytest.raises(FieldError) as caught:
        normalize_manifest(manifest)
    assert caught.value.code == "InvalidParameter"
    assert says in caught.value.message


def test_a_manifest_of_exactly_1024_bytes_is_accepted() -> None:
    assert normalize_manifest("m" * 1024) == "m" * 1024


@pytest.mark.parametrize(("prefix", "normalised"), [("", ""), ("a", "a/"), ("a/b/", "a/b/"), ("./a//", "a/")])
def test_prefixes_are_empty_or_end_with_a_slash(prefix: str, normalised: str) -> None:
    assert normalize_prefix(prefix) == normalised


_SEGMENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"), max_size=8
)


@given(st.lists(st.one_of(_SEGMENT, st.sampled_from(["", ".", ".."])), min_size=1, max_size=8))
def test_normalised_keys_never_climb_out_or_start_with_a_slash(segments: list[str]) -> None:
    # GIVEN any relative key built from segments, '.', '..' and empty ones
    key = "/".join(segments)
    try:
        normalised = normalize_key(key, "Manifest", allow_empty=True)
    except FieldError:
        return  # refused: fine
    # THEN what is accepted has no '..', '.' or empty segment and is stable under normalisation
    assert not normalised.startswith("/")
    parts = normalised.rstrip("/").split("/") if normalised else []
    assert all(part not in ("", ".", "..") for part in parts)
    assert normalize_key(normalised, "Manifest", allow_empty=True) == normalised
