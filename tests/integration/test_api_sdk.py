"""The API as a Tencent SDK user sees it: the real SDK, the local gateway, the real handler and a
real SQLite store. Every action (POST and GET), every error code the API answers with."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.mdp.v20200527 import models
from tests.support.api_stack import (
    DESTINATION,
    REGION,
    SECRET_ID,
    ApiStack,
    job_params,
    running_api_stack,
)
from tests.support.signing import signed_headers

from harvest.api.ratelimit import RateLimiter
from harvest.domain.job import TOPIC_WORK, JobStatus
from harvest.errors import QueueError

pytest_plugins = ("tests.support.api_stack",)  # the api_stack and no_proxy fixtures

Stack = ApiStack


def sdk_error(call: Any, *args: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as caught:
        call(*args)
    return caught.value


def describe_request(job_id: str) -> models.DescribeStreamPackageHarvestJobRequest:
    request = models.DescribeStreamPackageHarvestJobRequest()
    request.ID = job_id
    return request


def list_request(
    page_num: int | None = None, page_size: int | None = None, channel: str | None = None
) -> models.DescribeStreamPackageHarvestJobsRequest:
    request = models.DescribeStreamPackageHarvestJobsRequest()
    request.PageNum, request.PageSize, request.ChannelName = page_num, page_size, channel
    return request


def delete_request(job_id: str) -> models.DeleteStreamPackageHarvestJobRequest:
    request = models.DeleteStreamPackageHarvestJobRequest()
    request.ID = job_id
    return request


def delete_many_request(job_ids: list[str]) -> models.DeleteStreamPackageHarvestJobsRequest:
    request = models.DeleteStreamPackageHarvestJobsRequest()
    request.IDs = job_ids
    return request


# --- every action, POST and GET -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_every_action_round_trips_through_the_sdk(api_stack: Stack, method: str) -> None:
    client = api_stack.client(method)
    now = time.time()
    # GIVEN a valid create request with every optional field
    params = job_params(
        "job-1",
        now,
        TimeFormat="ISO-8601",
        StartTime=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 1800)),
        EndTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600)),
        Manifest="shows/evening.m3u8",
        CallbackURL="https://hooks.example.com/harvest?token=abc",
    )

    # WHEN it is created
    info = api_stack.create(params, method)

    # THEN the response echoes what was sent, Running, with the channel's id and our region
    assert (info.ID, info.Status, info.ChannelName, info.EndpointName) == ("job-1", "Running", "news", "hls")
    assert (info.StartTime, info.EndTime) == (params["StartTime"], params["EndTime"])
    assert info.TimeFormat == "ISO-8601"
    assert (info.Destination, info.Manifest) == (DESTINATION, "shows/evening.m3u8")
    assert (info.CallbackURL, info.ChannelId, info.Region) == (params["CallbackURL"], "ch-news-0001", REGION)
    assert abs(info.CreateTime - now) < 60
    # AND the plan message went through the outbox onto the queue
    assert api_stack.store.pending_outbox(10) == []
    leased = api_stack.queue.receive(10, 60)
    plan = {"kind": "plan", "job_id": "job-1"}
    assert [(delivery.message.topic, delivery.message.body) for delivery in leased] == [(TOPIC_WORK, plan)]

    # WHEN it is described, alone and in a list
    described = client.DescribeStreamPackageHarvestJob(describe_request("job-1")).Info
    listed = client.DescribeStreamPackageHarvestJobs(list_request(1, 10))

    # THEN both show the same job
    assert json.loads(described.to_json_string()) == json.loads(info.to_json_string())
    assert (listed.TotalNum, listed.PageNum, listed.PageSize) == (1, 1, 10)
    assert [job.ID for job in listed.Infos] == ["job-1"]

    # WHEN two finished jobs are deleted, one alone and two together
    api_stack.create(job_params("job-2", now), method)
    api_stack.create(job_params("job-3", now), method)
    for job_id in ("job-1", "job-2", "job-3"):
        api_stack.store.finish(job_id, JobStatus.COMPLETED)
    client.DeleteStreamPackageHarvestJob(delete_request("job-1"))
    client.DeleteStreamPackageHarvestJobs(delete_many_request(["job-2", "job-3"]))

    # THEN none is left
    assert client.DescribeStreamPackageHarvestJobs(list_request()).TotalNum == 0


def test_defaults_fill_manifest_and_paging(api_stack: Stack) -> None:
    # GIVEN a create without Manifest, and a list without PageNum / PageSize
    info = api_stack.create(job_params("defaults"))
    listed = api_stack.client().DescribeStreamPackageHarvestJobs(list_request())

    # THEN Manifest is <ID>/index.m3u8 and paging is page 1 of 10
    assert info.Manifest == "defaults/index.m3u8"
    assert (listed.PageNum, listed.PageSize, listed.TotalNum) == (1, 10, 1)


def test_default_destination_is_used_when_omitted(tmp_path: Path, no_proxy: None) -> None:
    # GIVEN a service with a default destination
    with running_api_stack(tmp_path, default_destination=DESTINATION + "defaults/") as stack:
        # WHEN a create omits Destination
        info = stack.create(job_params("no-dest", Destination=None))

        # THEN the default is applied and echoed
        assert info.Destination == DESTINATION + "defaults/"


def test_a_token_with_a_permanent_key_is_refused_and_an_unsigned_payload_accepted(api_stack: Stack) -> None:
    # GIVEN a permanent key sent with a (bogus) session token, and a client that does not sign the payload
    with_token = api_stack.client(token="session-token")
    unsigned_profile = api_stack.profile()
    unsigned_profile.unsignedPayload = True
    from tencentcloud.common import credential
    from tencentcloud.mdp.v20200527 import mdp_client

    unsigned = mdp_client.MdpClient(credential.Credential(SECRET_ID, "secret"), REGION, unsigned_profile)

    # WHEN both list jobs THEN the token is refused, not ignored, and the unsigned payload is answered
    with pytest.raises(TencentCloudSDKException) as caught:
        with_token.DescribeStreamPackageHarvestJobs(list_request())
    assert caught.value.get_code() == "AuthFailure.TokenFailure"
    assert unsigned.DescribeStreamPackageHarvestJobs(list_request()).TotalNum == 0


def test_answers_are_http_200_with_exact_json_content_type(api_stack: Stack) -> None:
    # GIVEN a success and an error, sent raw
    ok = api_stack.raw_post("DescribeStreamPackageHarvestJobs", b"{}")
    bad = api_stack.raw_post("DescribeStreamPackageHarvestJob", b'{"ID": "missing"}')

    # THEN both are HTTP 200 with Content-Type exactly application/json (no charset: the SDK needs it)
    for response in (ok, bad):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert set(response.json()["Response"]) >= {"RequestId"}
    assert bad.json()["Response"]["Error"]["Code"] == "InvalidParameter.NotFound"
    assert ok.json()["Response"]["RequestId"] != bad.json()["Response"]["RequestId"]


# --- authentication -------------------------------------------------------------------------------


def test_wrong_secret_key_is_signature_failure(api_stack: Stack) -> None:
    client = api_stack.client(secret_key="not-the-secret")
    error = sdk_error(client.DescribeStreamPackageHarvestJobs, list_request())
    assert error.get_code() == "AuthFailure.SignatureFailure"


def test_unknown_secret_id_is_secret_id_not_found(api_stack: Stack) -> None:
    client = api_stack.client(secret_id="AKIDunknown")
    error = sdk_error(client.DescribeStreamPackageHarvestJobs, list_request())
    assert error.get_code() == "AuthFailure.SecretIdNotFound"


@pytest.mark.parametrize("skew", [-301, 301])
def test_skewed_timestamp_is_signature_expire(api_stack: Stack, skew: int) -> None:
    # GIVEN a correctly signed request whose timestamp is more than 300 s off
    response = api_stack.raw_post(
        "DescribeStreamPackageHarvestJobs", b"{}", timestamp=int(time.time()) + skew
    )
    # THEN it is refused as expired
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer abc",
        "TC3-HMAC-SHA256 Credential=AKIDtest/2024-01-01/mdp/tc3_request, SignedHeaders=content-type;host",
        "TC3-HMAC-SHA256 Credential=AKIDtest/2024-01-01/mdp/tc3_request, SignedHeaders=host, Signature="
        + "a" * 64,
        "TC3-HMAC-SHA256 Credential=AKIDtest/mdp/tc3_request, SignedHeaders=content-type;host, Signature="
        + "a" * 64,
    ],
)
def test_garbled_authorization_is_invalid_authorization(api_stack: Stack, authorization: str) -> None:
    response = api_stack.raw_post(
        "DescribeStreamPackageHarvestJobs", b"{}", headers={"Authorization": authorization}
    )
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


def test_signature_for_another_service_is_invalid_authorization(api_stack: Stack) -> None:
    # GIVEN the SDK's generic client signing for service cvm
    error = sdk_error(api_stack.common(service="cvm").call_json, "DescribeStreamPackageHarvestJobs", {})
    assert error.get_code() == "AuthFailure.InvalidAuthorization"


def test_tampered_body_is_signature_failure(api_stack: Stack) -> None:
    # GIVEN a request signed over one body and sent with another
    headers = signed_headers(api_stack.endpoint, "DescribeStreamPackageHarvestJob", b'{"ID": "a"}')
    import requests

    response = requests.post(
        f"http://{api_stack.endpoint}/", data=b'{"ID": "b"}', headers=headers, timeout=10
    )
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_replay_protection_refuses_a_repeated_create_and_serves_repeated_reads(
    tmp_path: Path, no_proxy: None
) -> None:
    with running_api_stack(tmp_path, replay_protection=True) as stack:
        timestamp = int(time.time())
        body = json.dumps(job_params("replay-1")).encode()
        # WHEN the very same signed Create is sent twice
        first = stack.raw_post("CreateStreamPackageHarvestJob", body, timestamp=timestamp)
        second = stack.raw_post("CreateStreamPackageHarvestJob", body, timestamp=timestamp)
        # THEN the first is answered and the second refused as a replay
        assert first.json()["Response"]["Info"]["ID"] == "replay-1"
        error = second.json()["Response"]["Error"]
        assert error["Code"] == "AuthFailure.SignatureFailure"
        assert "replay" in error["Message"]
        # AND the same signed Delete twice: the second is a replay too (the job is Running anyway)
        delete = json.dumps({"ID": "replay-1"}).encode()
        codes = [
            stack.raw_post("DeleteStreamPackageHarvestJob", delete, timestamp=timestamp).json()["Response"]
            for _ in range(2)
        ]
        assert [c["Error"]["Code"] for c in codes] == [
            "InvalidParameter.State",
            "AuthFailure.SignatureFailure",
        ]
        # AND identical signed reads within one second (a poller) are all served
        list_action = "DescribeStreamPackageHarvestJobs"
        reads = [stack.raw_post(list_action, b"{}", timestamp=timestamp) for _ in range(3)]
        assert [r.json()["Response"]["TotalNum"] for r in reads] == [1, 1, 1]


# --- protocol -------------------------------------------------------------------------------------


def test_wrong_region_is_unsupported_region(api_stack: Stack) -> None:
    error = sdk_error(
        api_stack.client(region="ap-guangzhou").DescribeStreamPackageHarvestJobs, list_request()
    )
    assert error.get_code() == "UnsupportedRegion"


def test_other_version_is_no_such_version(api_stack: Stack) -> None:
    error = sdk_error(
        api_stack.common(version="2019-01-01").call_json, "DescribeStreamPackageHarvestJobs", {}
    )
    assert error.get_code() == "NoSuchVersion"


def test_unknown_action_is_invalid_action(api_stack: Stack) -> None:
    error = sdk_error(api_stack.common().call_json, "CreateStreamPackageChannel", {})
    assert error.get_code() == "InvalidAction"


def test_other_http_methods_are_unsupported_protocol(api_stack: Stack) -> None:
    import requests

    response = requests.put(f"http://{api_stack.endpoint}/", data=b"{}", timeout=10)
    assert response.status_code == 200
    assert response.json()["Response"]["Error"]["Code"] == "UnsupportedProtocol"


def test_body_too_large_is_request_size_limit_exceeded(tmp_path: Path, no_proxy: None) -> None:
    with running_api_stack(tmp_path, max_body_bytes=4096) as stack:
        # GIVEN a create whose Manifest makes the body larger than the limit
        params = job_params("big", Manifest="m" * 5000)
        error = sdk_error(stack.create, params)
        # THEN it is refused for its size, before anything else
        assert error.get_code() == "RequestSizeLimitExceeded"
        assert stack.store.list(None, 0, 10).total == 0


def test_malformed_json_is_invalid_parameter(api_stack: Stack) -> None:
    for body in (
        b'{"ID": ',
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b'{"ID": "a", "ID": "b"}',
        b'{"PageNum": NaN}',
    ):
        response = api_stack.raw_post("DescribeStreamPackageHarvestJobs", body)
        assert response.json()["Response"]["Error"]["Code"] == "InvalidParameter", body


def test_rate_limit_answers_request_limit_exceeded(tmp_path: Path, no_proxy: None) -> None:
    # GIVEN a limit of 2 requests/s per SecretId and action, on a clock that stands still
    clock = [1000.0]
    limiter = RateLimiter(2, clock=lambda: clock[0])
    with running_api_stack(tmp_path, rate_limit=2.0, deps_overrides={"rate_limiter": limiter}) as stack:
        client = stack.client()

        # WHEN 10 requests are fired at once
        outcomes = []
        for _ in range(10):
            try:
                client.DescribeStreamPackageHarvestJobs(list_request())
                outcomes.append("ok")
            except TencentCloudSDKException as exc:
                outcomes.append(exc.get_code())

        # THEN the burst of 2 passes and the rest are limited
        assert outcomes == ["ok"] * 2 + ["RequestLimitExceeded"] * 8
        # AND another action has its own bucket
        assert sdk_error(client.DescribeStreamPackageHarvestJob, describe_request("x")).get_code() == (
            "InvalidParameter.NotFound"
        )
        # AND half a second later one more token has been refilled
        clock[0] += 0.5
        client.DescribeStreamPackageHarvestJobs(list_request())
        assert (
            sdk_error(client.DescribeStreamPackageHarvestJobs, list_request()).get_code()
            == "RequestLimitExceeded"
        )


# --- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params", "code", "named"),
    [
        ("CreateStreamPackageHarvestJob", {"StartTime": 1700000000}, "InvalidParameter", "StartTime"),
        ("CreateStreamPackageHarvestJob", {"ID": ["a"]}, "InvalidParameter", "ID"),
        ("CreateStreamPackageHarvestJob", {"Bucket": "x"}, "UnknownParameter", "Bucket"),
        ("CreateStreamPackageHarvestJob", {"ChannelName": None}, "MissingParameter", "ChannelName"),
        ("DescribeStreamPackageHarvestJobs", {"PageNum": "1"}, "InvalidParameter", "PageNum"),
        ("DescribeStreamPackageHarvestJobs", {"PageSize": 1.5}, "InvalidParameter", "PageSize"),
        ("DescribeStreamPackageHarvestJobs", {"PageNum": True}, "InvalidParameter", "PageNum"),
        ("DescribeStreamPackageHarvestJobs", {"Page": 1}, "UnknownParameter", "Page"),
        ("DescribeStreamPackageHarvestJob", {}, "MissingParameter", "ID"),
        ("DeleteStreamPackageHarvestJobs", {"IDs": "job-1"}, "InvalidParameter", "IDs"),
        ("DeleteStreamPackageHarvestJobs", {"IDs": [1, 2]}, "InvalidParameter", "IDs"),
        ("DeleteStreamPackageHarvestJob", {"ID": "a", "IDs": ["a"]}, "UnknownParameter", "IDs"),
    ],
)
def test_parameter_shape_errors(
    api_stack: Stack, action: str, params: dict[str, Any], code: str, named: str
) -> None:
    # GIVEN otherwise valid parameters with one field of the wrong shape, sent typed as given
    base = job_params("shape") if action.startswith("Create") else {}
    body = {**base, **params}
    body = {key: value for key, value in body.items() if value is not None}

    # WHEN the SDK's generic client sends them
    error = sdk_error(api_stack.common().call_json, action, body)

    # THEN the code says what is wrong and the message names the field
    assert error.get_code() == code
    assert named in error.get_message()


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


NOW = time.time()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ID": "has space"}, "InvalidParameter.Id"),
        ({"ID": "x" * 129}, "InvalidParameter.Id"),
        ({"ChannelName": "weather"}, "InvalidParameter.NotFound"),
        ({"EndpointName": "dash"}, "InvalidParameter.NotFound"),
        ({"TimeFormat": "unix"}, "InvalidParameter"),
        ({"StartTime": "soon"}, "InvalidParameter"),
        ({"EndTime": "-5"}, "InvalidParameter"),
        (
            {"TimeFormat": "ISO-8601", "StartTime": "2024-01-01T00:00:00 +08:00", "EndTime": _iso(NOW - 60)},
            "InvalidParameter",
        ),
        (
            {"StartTime": str(int(NOW) - 600), "EndTime": str(int(NOW) - 1800)},
            "InvalidParameterValue",
        ),
        (
            {"StartTime": str(int(NOW) - 80000), "EndTime": str(int(NOW) - 80000 + 86401)},
            "InvalidParameterValue",
        ),
        ({"EndTime": str(int(NOW) + 3600)}, "InvalidParameterValue"),
        (
            {"StartTime": str(int(NOW) - 90000), "EndTime": str(int(NOW) - 86000)},
            "InvalidParameterValue",
        ),
        ({"Destination": "cos://harvest-1250000000/vod"}, "InvalidParameter"),
        (
            {"Destination": "https://harvest-1250000000.cos.ap-guangzhou.myqcloud.com/"},
            "InvalidParameterValue",
        ),
        ({"Manifest": "../escape.m3u8"}, "InvalidParameter"),
        ({"CallbackURL": "ftp://example.com/x"}, "InvalidParameter.Url"),
        ({"Destination": None}, "MissingParameter"),
    ],
)
def test_create_rules_answer_their_codes(api_stack: Stack, overrides: dict[str, Any], code: str) -> None:
    # GIVEN a create that breaks one rule
    params = job_params("rule-check", NOW, **overrides)
    # WHEN the SDK sends it THEN the answer names the rule, and nothing is stored
    assert sdk_error(api_stack.create, params).get_code() == code
    assert api_stack.store.list(None, 0, 10).total == 0


def test_bucket_outside_allowed_buckets_is_refused(tmp_path: Path, no_proxy: None) -> None:
    with running_api_stack(tmp_path, allowed_buckets=("other-1250000000",)) as stack:
        assert sdk_error(stack.create, job_params("bucket")).get_code() == "InvalidParameterValue"


def test_duplicate_id_is_resource_in_use(api_stack: Stack) -> None:
    api_stack.create(job_params("twice"))
    assert sdk_error(api_stack.create, job_params("twice")).get_code() == "ResourceInUse"


def test_unknown_job_is_resource_not_found(api_stack: Stack) -> None:
    client = api_stack.client()
    assert sdk_error(client.DescribeStreamPackageHarvestJob, describe_request("nope")).get_code() == (
        "InvalidParameter.NotFound"
    )
    assert sdk_error(client.DeleteStreamPackageHarvestJob, delete_request("nope")).get_code() == (
        "InvalidParameter.NotFound"
    )


# --- paging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_pagination_is_complete_stable_and_filterable(api_stack: Stack, method: str) -> None:
    # GIVEN 23 jobs on channel news and 4 on sports
    now = time.time()
    for i in range(23):
        api_stack.create(job_params(f"news-{i:02d}", now))
    for i in range(4):
        api_stack.create(job_params(f"sports-{i}", now, ChannelName="sports"))
    client = api_stack.client(method)

    # WHEN every page of 10 is read
    pages = [client.DescribeStreamPackageHarvestJobs(list_request(page, 10)) for page in (1, 2, 3, 4)]

    # THEN the pages hold 10, 10, 7, 0 jobs, each once, in (CreateTime, ID) order, with the total
    assert [len(page.Infos) for page in pages] == [10, 10, 7, 0]
    assert {page.TotalNum for page in pages} == {27}
    seen = [(job.CreateTime, job.ID) for page in pages for job in page.Infos]
    assert seen == sorted(seen)
    assert len(set(seen)) == 27
    # AND reading again gives the same order
    again = client.DescribeStreamPackageHarvestJobs(list_request(1, 10))
    assert [job.ID for job in again.Infos] == [job.ID for job in pages[0].Infos]
    # AND a channel filter counts and lists only that channel
    sports = client.DescribeStreamPackageHarvestJobs(list_request(1, 100, channel="sports"))
    assert (sports.TotalNum, sorted(job.ID for job in sports.Infos)) == (4, [f"sports-{i}" for i in range(4)])


@pytest.mark.parametrize(
    ("page_num", "page_size", "code"),
    [
        (0, 10, "InvalidParameter.PageNum"),
        (1, 0, "InvalidParameter.PageSize"),
        (1, 1001, "InvalidParameter.PageSize"),
        (1001, 10, "InvalidParameter.PageNum"),
    ],
)
def test_page_bounds(api_stack: Stack, page_num: int, page_size: int, code: str) -> None:
    error = sdk_error(api_stack.client().DescribeStreamPackageHarvestJobs, list_request(page_num, page_size))
    assert error.get_code() == code


# --- deleting -------------------------------------------------------------------------------------


def test_running_jobs_cannot_be_deleted_and_deletes_are_all_or_nothing(api_stack: Stack) -> None:
    client = api_stack.client()
    # GIVEN a Running job (no worker runs here), a Completed one and a Failed one
    for job_id in ("running", "done", "failed"):
        api_stack.create(job_params(job_id))
    api_stack.store.finish("done", JobStatus.COMPLETED)
    api_stack.store.finish("failed", JobStatus.FAILED, "origin gone")

    # WHEN the Running job is deleted, alone or with the Completed one
    alone = sdk_error(client.DeleteStreamPackageHarvestJob, delete_request("running"))
    together = sdk_error(client.DeleteStreamPackageHarvestJobs, delete_many_request(["done", "running"]))
    with_unknown = sdk_error(client.DeleteStreamPackageHarvestJobs, delete_many_request(["done", "ghost"]))

    # THEN each is refused and nothing is deleted
    assert alone.get_code() == together.get_code() == "InvalidParameter.State"
    assert with_unknown.get_code() == "InvalidParameter.NotFound"
    assert api_stack.store.list(None, 0, 10).total == 3

    # WHEN the finished ones are deleted together THEN only the Running one is left
    client.DeleteStreamPackageHarvestJobs(delete_many_request(["done", "failed"]))
    assert [job.id for job in api_stack.store.list(None, 0, 10).jobs] == ["running"]


@pytest.mark.parametrize(
    ("ids", "code"),
    [
        ([], "InvalidParameter.Id"),
        ([f"j{i}" for i in range(101)], "InvalidParameter.Id"),
        (["ok", "not ok"], "InvalidParameter.Id"),
    ],
)
def test_delete_many_checks_its_ids(api_stack: Stack, ids: list[str], code: str) -> None:
    error = sdk_error(api_stack.client().DeleteStreamPackageHarvestJobs, delete_many_request(ids))
    assert error.get_code() == code


# --- resilience -----------------------------------------------------------------------------------


class BrokenRelay:
    def flush(self, limit: int = 500) -> int:
        raise QueueError("queue unreachable")


def test_create_succeeds_when_publishing_fails_and_the_outbox_keeps_the_message(
    tmp_path: Path, no_proxy: None
) -> None:
    # GIVEN a relay that cannot reach the queue
    with running_api_stack(tmp_path, relay_factory=lambda store, queue: BrokenRelay()) as stack:
        # WHEN a job is created
        info = stack.create(job_params("durable"))

        # THEN the create succeeds and the plan message waits in the outbox for a later flush
        assert info.Status == "Running"
        pending = stack.store.pending_outbox(10)
        assert [message.body for _, message in pending] == [{"kind": "plan", "job_id": "durable"}]


def test_progress_extension_action_reports_counters(api_stack: Stack) -> None:
    # GIVEN a created job
    api_stack.create(job_params("progress"))
    # WHEN the CLI's extension action asks for its progress through the SDK's generic client
    response = api_stack.common().call_json("DescribeStreamPackageHarvestJobProgress", {"ID": "progress"})
    # THEN the counters and phase of the stored job come back
    progress = response["Response"]
    assert (progress["ID"], progress["Status"], progress["Phase"]) == ("progress", "Running", "queued")
    assert (progress["SegmentsTotal"], progress["SegmentsDone"], progress["BytesDone"]) == (0, 0, 0)
