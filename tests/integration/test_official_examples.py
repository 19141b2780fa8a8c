"""Tencent's own examples of the five harvest actions, sent by the unchanged SDK to `harvest serve`.

The request bodies are the examples on Tencent's API pages (CreateStreamPackageHarvestJob,
https://www.tencentcloud.com/document/api/1063/57605, and its siblings 57601-57604) and the
form issue 16 quotes (`"StartTime": "2023-08-10 00:00:00"`: a space, no zone). Only the
placeholders are filled in: "your HarvestJob ID", "your package channel name ...", "your endpoint
name" and "bucket-appid" are not valid values anywhere, so a real ID, the registry's channel and
endpoint, and a bucket with an APPID stand in for them. Times, TimeFormat, Destination's form and
Manifest are Tencent's, verbatim; so is the answer's echo of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.serve_process import (
    SERVE_SECRET_ID,
    SERVE_SECRET_KEY,
    ServeProcess,
    describe_until_ended,
    serve_env,
    start_serve,
)

REGION = "ap-mumbai"  # the region of the example's Destination
CHANNEL, ENDPOINT = "startover-channel", "startover-endpoint"
DESTINATION = "https://bucket-1250000000.cos.ap-mumbai.myqcloud.com/"
FOUR_YEARS = 4 * 365 * 86400  # the examples' 2023 windows must lie inside the startover window

CREATE_EXAMPLES = {
    # The API page's example: an instant, with offsets.
    "api-page": {
        "TimeFormat": "ISO-8601",
        "StartTime": "2023-11-22T14:38:30+08:00",
        "EndTime": "2023-11-22T14:38:30+08:00",
        "Destination": DESTINATION,
        "Manifest": "main.m3u8",
    },
    # The form issue 16 quotes: a space and no zone (read in HARVEST_TIMEZONE, Asia/Shanghai).
    "no-zone": {
        "TimeFormat": "ISO-8601",
        "StartTime": "2023-08-10 00:00:00",
        "EndTime": "2023-08-10 01:00:00",
        "Destination": DESTINATION,
        "Manifest": "main.m3u8",
    },
}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    channels = tmp_path / "channels.yaml"
    channels.write_text(
        f"channels:\n  - name: {CHANNEL}\n    endpoints:\n      - name: {ENDPOINT}\n"
        f"        url: http://127.0.0.1:9/live/main.m3u8\n        startover_window: {FOUR_YEARS}\n",
        encoding="utf-8",
    )
    env = serve_env(
        tmp_path / "data", channels, extra={"HARVEST_REGION": REGION, "HARVEST_FETCH_ATTEMPTS": "1"}
    )
    process = start_serve(env, tmp_path / "data")
    yield process
    process.stop()


def client(serve: ServeProcess) -> mdp_client.MdpClient:
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=serve.endpoint, protocol="http"))
    return mdp_client.MdpClient(credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY), REGION, profile)


def request(model: Any, body: dict[str, Any]) -> Any:
    model.from_json_string(json.dumps(body))
    return model


def test_tencents_examples_of_the_five_actions_succeed(serve: ServeProcess) -> None:
    mdp = client(serve)
    # Create: each example is accepted and echoed the way the example's answer shows
    for job_id, example in CREATE_EXAMPLES.items():
        body = {"ID": job_id, "ChannelName": CHANNEL, "EndpointName": ENDPOINT, **example}
        info = mdp.CreateStreamPackageHarvestJob(
            request(models.CreateStreamPackageHarvestJobRequest(), body)
        ).Info
        echoed = {key: getattr(info, key) for key in example}
        assert echoed == example
        assert (info.ID, info.ChannelName, info.EndpointName, info.Status) == (
            job_id,
            CHANNEL,
            ENDPOINT,
            "Running",
        )
    # Describe: {"ID": ...}
    one = mdp.DescribeStreamPackageHarvestJob(
        request(models.DescribeStreamPackageHarvestJobRequest(), {"ID": "no-zone"})
    )
    assert (one.Info.StartTime, one.Info.EndTime, one.Info.TimeFormat) == (
        "2023-08-10 00:00:00",
        "2023-08-10 01:00:00",
        "ISO-8601",
    )
    # Describes: {"ChannelName": ..., "PageNum": 1, "PageSize": 10}
    page = mdp.DescribeStreamPackageHarvestJobs(
        request(
            models.DescribeStreamPackageHarvestJobsRequest(),
            {"ChannelName": CHANNEL, "PageNum": 1, "PageSize": 10},
        )
    )
    assert (page.TotalNum, page.PageNum, page.PageSize) == (2, 1, 10)
    assert sorted(job.ID for job in page.Infos) == sorted(CREATE_EXAMPLES)
    # Only ended jobs can be deleted: these end Failed, as no origin serves 2023 here
    for job_id in CREATE_EXAMPLES:
        assert describe_until_ended(mdp, job_id, 30).Status == "Failed"
    # Delete: {"ID": ...}; Deletes: {"IDs": [...]}
    mdp.DeleteStreamPackageHarvestJob(
        request(models.DeleteStreamPackageHarvestJobRequest(), {"ID": "api-page"})
    )
    mdp.DeleteStreamPackageHarvestJobs(
        request(models.DeleteStreamPackageHarvestJobsRequest(), {"IDs": ["no-zone"]})
    )
    empty = mdp.DescribeStreamPackageHarvestJobs(
        request(models.DescribeStreamPackageHarvestJobsRequest(), {})
    )
    assert empty.TotalNum == 0
