"""StreamPackage's channel actions through the real SDK: DescribeStreamPackageChannels and
DescribeStreamPackageChannel answered from the registry, in the SDK models' exact shapes, and our
DescribeStreamPackageHarvestSettings extension."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.mdp.v20200527 import models
from tests.support.api_stack import REGION, ApiStack, running_api_stack

pytest_plugins = ("tests.support.api_stack",)

REGISTRY = """\
channels:
  - name: news
    id: ch-news-0001
    endpoints:
      - name: hls
        url: http://origin.example/news/hls/main.m3u8
        startover_window: 3600
        headers: {X-TENCENT-PACKAGE: origin-secret}
      - name: cmaf
        url: http://origin.example/news/cmaf/index.m3u8
        protocol: CMAF
        startover_window: 172801
  - name: arts
    endpoints:
      - name: hls
        url: http://origin.example/arts/master.m3u8
"""
DESTINATION = "https://vod-1250000000.cos.ap-singapore.myqcloud.com/harvests/"


@pytest.fixture
def stack(tmp_path: Path, no_proxy: None) -> Iterator[ApiStack]:
    channels = tmp_path / "registry.yaml"
    channels.write_text(REGISTRY, encoding="utf-8")
    with running_api_stack(
        tmp_path,
        channels_file=channels,
        default_destination=DESTINATION,
        allowed_buckets=("vod-1250000000",),
    ) as running:
        yield running


def model_fields(model: type[Any]) -> set[str]:
    return {name[1:] for name in vars(model()) if name.startswith("_")}


def assert_exact_shape(raw: dict[str, Any], model: type[Any]) -> None:
    """Every field the SDK model has, and no other, at this level."""
    assert set(raw) == model_fields(model), model.__name__


def test_channels_list_in_the_sdk_models_exact_shape(stack: ApiStack) -> None:
    # WHEN the SDK lists the channels, with any deserialisation warning turned into an error
    request = models.DescribeStreamPackageChannelsRequest()
    request.PageNum, request.PageSize = 1, 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SDK warns "fileds are useless" for an unknown field
        listed = stack.client().DescribeStreamPackageChannels(request)

    # THEN both channels are there, by name, with their endpoints by name
    assert (listed.TotalNum, listed.TotalPage, listed.PageNum, listed.PageSize) == (2, 1, 1, 10)
    assert [channel.Name for channel in listed.Infos] == ["arts", "news"]
    news = listed.Infos[1]
    assert (news.Id, news.Protocol) == ("ch-news-0001", "")  # HLS and CMAF endpoints: no one protocol
    assert listed.Infos[0].Id.startswith("ch-")
    assert listed.Infos[0].Protocol == "HLS"
    assert news.Points.Inputs == []
    cmaf, hls = news.Points.Endpoints
    assert (hls.Name, hls.Url, hls.Protocol, hls.Manifest) == (
        "hls",
        "http://origin.example/news/hls/main.m3u8",
        "HLS",
        "main",
    )
    # AND the startover window in StreamPackage's whole days, rounded up
    assert (hls.TimeShiftEnable, hls.TimeShiftDuration) == (True, 1)
    assert (cmaf.Protocol, cmaf.TimeShiftDuration) == ("CMAF", 3)
    # AND the origin's auth header is never returned
    assert (hls.AuthInfo.AuthKey, hls.AuthInfo.WhiteIpList, hls.AuthInfo.BlackIpList) == ("", [], [])

    # AND the raw answer has exactly the models' fields at every level
    raw = stack.common().call_json("DescribeStreamPackageChannels", {})["Response"]
    assert_exact_shape(raw, models.DescribeStreamPackageChannelsResponse)
    channel = raw["Infos"][1]
    assert_exact_shape(channel, models.ChannelInfo)
    assert_exact_shape(channel["Points"], models.PointInfo)
    assert_exact_shape(channel["Points"]["Endpoints"][0], models.EndpointInfo)
    assert_exact_shape(channel["Points"]["Endpoints"][0]["AuthInfo"], models.EndpointAuthInfo)
    assert "origin-secret" not in json.dumps(raw)


def test_channels_paging_and_its_limits(stack: ApiStack) -> None:
    client = stack.client("GET")
    # WHEN page 2 of size 1 is asked for, and a page past the end
    request = models.DescribeStreamPackageChannelsRequest()
    request.PageNum, request.PageSize = 2, 1
    second = client.DescribeStreamPackageChannels(request)
    request.PageNum = 3
    past = client.DescribeStreamPackageChannels(request)

    # THEN the second channel by name, then nothing
    assert [channel.Name for channel in second.Infos] == ["news"]
    assert (second.TotalNum, second.TotalPage) == (2, 2)
    assert past.Infos == []
    assert past.TotalNum == 2

    # WHEN a page size outside [1, 1000] is asked for
    request.PageNum, request.PageSize = 1, 1001
    with pytest.raises(TencentCloudSDKException) as caught:
        client.DescribeStreamPackageChannels(request)

    # THEN the API says which field and why
    assert caught.value.code == "InvalidParameter.PageSize"
    assert "between 1 and 1000" in caught.value.message


def test_one_channel_by_id(stack: ApiStack) -> None:
    client = stack.client()
    request = models.DescribeStreamPackageChannelRequest()
    request.Id = "ch-news-0001"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = client.DescribeStreamPackageChannel(request).Info

    assert (info.Name, [endpoint.Name for endpoint in info.Points.Endpoints]) == ("news", ["cmaf", "hls"])

    # WHEN the Id is unknown, or missing
    request.Id = "news"  # a name is not an Id
    with pytest.raises(TencentCloudSDKException) as unknown:
        client.DescribeStreamPackageChannel(request)
    with pytest.raises(TencentCloudSDKException) as missing:
        client.DescribeStreamPackageChannel(models.DescribeStreamPackageChannelRequest())

    # THEN the API names the problem
    assert unknown.value.code == "InvalidParameter.NotFound"
    assert "'news' is not the Id of a known channel" in unknown.value.message
    assert missing.value.code == "MissingParameter"


def test_harvest_settings_extension_gives_the_exact_windows(stack: ApiStack) -> None:
    # WHEN a client asks what the Create rules depend on
    answer = stack.common().call_json("DescribeStreamPackageHarvestSettings", {})["Response"]

    # THEN region, destination defaults, the 24 h limit and each endpoint's exact window
    assert answer["Region"] == REGION
    assert (answer["DefaultDestination"], answer["AllowedBuckets"]) == (DESTINATION, ["vod-1250000000"])
    assert answer["MaxDuration"] == 86400
    windows = {(e["ChannelName"], e["EndpointName"]): e["StartoverWindow"] for e in answer["Endpoints"]}
    assert windows == {("arts", "hls"): 86400, ("news", "cmaf"): 172801, ("news", "hls"): 3600}
