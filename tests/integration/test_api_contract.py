"""The API contract, driven only through the unchanged Tencent SDK.

Every action (the five StreamPackage actions and our two extensions through `CommonClient`) with
each of the SDK's three signing methods (`ClientProfile.signMethod`: TC3-HMAC-SHA256, HmacSHA256,
HmacSHA1), by POST and GET, with a permanent key and with a temporary key and its token, in both
answer languages. Errors come back in the language asked for.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.api_stack import REGION, SECRET_ID, SECRET_KEY, ApiStack, job_params

from harvest.handlers.api import API_VERSION

pytest_plugins = ("tests.support.api_stack",)

SIGN_METHODS = ["TC3-HMAC-SHA256", "HmacSHA256", "HmacSHA1"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def clients(
    stack: ApiStack, method: str, sign_method: str, language: str, cred: credential.Credential
) -> tuple[mdp_client.MdpClient, CommonClient]:
    profile = stack.profile(method, sign_method, language)
    return (
        mdp_client.MdpClient(cred, REGION, profile),
        CommonClient("mdp", API_VERSION, cred, REGION, profile),
    )


def sdk_error(call: Any, *args: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as caught:
        call(*args)
    return caught.value


def describe(job_id: str) -> models.DescribeStreamPackageHarvestJobRequest:
    request = models.DescribeStreamPackageHarvestJobRequest()
    request.ID = job_id
    return request


def create(client: mdp_client.MdpClient, job_id: str) -> models.HarvestJobResp:
    import json

    request = models.CreateStreamPackageHarvestJobRequest()
    request.from_json_string(json.dumps(job_params(job_id)))
    return client.CreateStreamPackageHarvestJob(request).Info


@pytest.mark.parametrize("language", ["en-US", "zh-CN"])
@pytest.mark.parametrize("temporary", [False, True], ids=["permanent-key", "temporary-key"])
@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("sign_method", SIGN_METHODS)
def test_every_action_through_the_sdk(
    api_stack: ApiStack, sign_method: str, method: str, temporary: bool, language: str
) -> None:
    # GIVEN the SDK set to one signing method, HTTP method, kind of key and language
    if temporary:
        issued = api_stack.issue_key()
        cred = credential.Credential(issued.key.secret_id, issued.key.secret_key, issued.token)
        caller = issued.key.secret_id
    else:
        cred, caller = credential.Credential(SECRET_ID, SECRET_KEY), SECRET_ID
    mdp, common = clients(api_stack, method, sign_method, language, cred)
    first, second, third = "c-1", "c-2", "c-3"

    # WHEN every action is called THEN each answers as the models say
    assert create(mdp, first).Status == "Running"
    create(mdp, second)
    create(mdp, third)
    info = mdp.DescribeStreamPackageHarvestJob(describe(first)).Info
    assert (info.ID, info.ChannelName, info.TimeFormat) == (first, "news", "Epoch seconds")
    listing = models.DescribeStreamPackageHarvestJobsRequest()
    listing.ChannelName, listing.PageNum, listing.PageSize = "news", 1, 1000
    page = mdp.DescribeStreamPackageHarvestJobs(listing)
    assert (page.TotalNum, page.PageSize, [job.ID for job in page.Infos]) == (3, 1000, [first, second, third])
    progress = common.call_json("DescribeStreamPackageHarvestJobProgress", {"ID": first})["Response"]
    assert progress["Status"] == "Running"
    cancelled = common.call_json("CancelStreamPackageHarvestJob", {"ID": first})["Response"]["Info"]
    assert cancelled["Status"] == "Failed"
    assert re.fullmatch(
        rf"cancelled by {caller} at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cancelled["ErrMessage"]
    )
    common.call_json("CancelStreamPackageHarvestJob", {"ID": second})
    common.call_json("CancelStreamPackageHarvestJob", {"ID": third})
    one = models.DeleteStreamPackageHarvestJobRequest()
    one.ID = first
    mdp.DeleteStreamPackageHarvestJob(one)
    many = models.DeleteStreamPackageHarvestJobsRequest()
    many.IDs = [second, third]
    mdp.DeleteStreamPackageHarvestJobs(many)
    assert mdp.DescribeStreamPackageHarvestJobs(listing).TotalNum == 0

    # AND an error is answered with an mdp code, in the language asked for
    missing = sdk_error(mdp.DescribeStreamPackageHarvestJob, describe(first))
    assert missing.get_code() == "InvalidParameter.NotFound"
    assert bool(CJK.search(missing.get_message())) == (language == "zh-CN"), missing.get_message()


@pytest.mark.parametrize("sign_method", SIGN_METHODS)
def test_a_temporary_key_without_its_token_or_with_another_is_refused(
    api_stack: ApiStack, sign_method: str
) -> None:
    # GIVEN a temporary key
    issued = api_stack.issue_key()
    key = issued.key

    def call(token: str | None) -> TencentCloudSDKException:
        mdp, _ = clients(
            api_stack,
            "POST",
            sign_method,
            "en-US",
            credential.Credential(key.secret_id, key.secret_key, token),
        )
        return sdk_error(mdp.DescribeStreamPackageHarvestJob, describe("x"))

    # WHEN it is used without a token, or with a wrong one, THEN the token is what is refused
    for token in (None, "not-the-token", issued.token[:-1]):
        error = call(token)
        assert error.get_code() == "AuthFailure.TokenFailure", (token, error.get_message())
    # AND its own token with a permanent key is refused too, never ignored
    mdp, _ = clients(
        api_stack, "POST", sign_method, "en-US", credential.Credential(SECRET_ID, SECRET_KEY, issued.token)
    )
    assert (
        sdk_error(mdp.DescribeStreamPackageHarvestJob, describe("x")).get_code() == "AuthFailure.TokenFailure"
    )
    # AND the right token works (the job simply does not exist)
    assert call(issued.token).get_code() == "InvalidParameter.NotFound"


@pytest.mark.parametrize("sign_method", SIGN_METHODS)
def test_an_expired_temporary_key_is_refused(api_stack: ApiStack, sign_method: str) -> None:
    # GIVEN a key issued two hours ago for one hour
    issued = api_stack.issue_key(ttl=3600, now=time.time() - 7200)
    cred = credential.Credential(issued.key.secret_id, issued.key.secret_key, issued.token)
    mdp, _ = clients(api_stack, "POST", sign_method, "zh-CN", cred)
    # WHEN it is used THEN it is refused as an expired token, in Chinese
    error = sdk_error(mdp.DescribeStreamPackageHarvestJob, describe("x"))
    assert error.get_code() == "AuthFailure.TokenFailure"
    assert "过期" in error.get_message()


def test_a_scoped_temporary_key_may_call_only_its_actions(api_stack: ApiStack) -> None:
    # GIVEN a key that may only read
    issued = api_stack.issue_key(scope=("Describe*",))
    cred = credential.Credential(issued.key.secret_id, issued.key.secret_key, issued.token)
    mdp, _ = clients(api_stack, "POST", "TC3-HMAC-SHA256", "en-US", cred)
    # WHEN it lists and then creates THEN listing works and creating is not authorized
    assert (
        mdp.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest()).TotalNum == 0
    )
    error = sdk_error(create, mdp, "scoped")
    assert error.get_code() == "UnauthorizedOperation"
    assert "Describe*" in error.get_message()


@pytest.mark.parametrize("sign_method", ["HmacSHA256", "HmacSHA1"])
def test_v1_signatures_are_checked_like_tc3(api_stack: ApiStack, sign_method: str) -> None:
    # GIVEN the SDK signing v1 with a wrong key, and with an unknown SecretId
    wrong_key, _ = clients(api_stack, "POST", sign_method, "en-US", credential.Credential(SECRET_ID, "wrong"))
    unknown, _ = clients(
        api_stack, "GET", sign_method, "en-US", credential.Credential("AKIDnobody", SECRET_KEY)
    )
    # THEN both are refused with the TC3 codes
    assert (
        sdk_error(wrong_key.DescribeStreamPackageHarvestJob, describe("x")).get_code()
        == "AuthFailure.SignatureFailure"
    )
    assert (
        sdk_error(unknown.DescribeStreamPackageHarvestJob, describe("x")).get_code()
        == "AuthFailure.SecretIdNotFound"
    )


def test_an_unsupported_language_is_refused(api_stack: ApiStack) -> None:
    # The SDK itself only sends zh-CN or en-US; another client may send anything.
    answer = api_stack.raw_post(
        "DescribeStreamPackageHarvestJobs", b"{}", headers={"X-TC-Language": "fr-FR"}
    ).json()["Response"]["Error"]
    assert answer["Code"] == "InvalidParameter"
    assert "zh-CN" in answer["Message"]


def test_cancelling_a_job_that_is_not_running_is_refused(api_stack: ApiStack) -> None:
    mdp, common = clients(
        api_stack, "POST", "TC3-HMAC-SHA256", "zh-CN", credential.Credential(SECRET_ID, SECRET_KEY)
    )
    create(mdp, "once")
    common.call_json("CancelStreamPackageHarvestJob", {"ID": "once"})
    again = sdk_error(common.call_json, "CancelStreamPackageHarvestJob", {"ID": "once"})
    assert again.get_code() == "InvalidParameter.State"
    assert "Failed" in again.get_message()
    assert CJK.search(again.get_message())
    assert sdk_error(common.call_json, "CancelStreamPackageHarvestJob", {"ID": "none"}).get_code() == (
        "InvalidParameter.NotFound"
    )


def v1_form(
    action: str,
    timestamp: int,
    nonce: int,
    host: str,
    method: str = "HmacSHA256",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """A v1-signed POST form for `action`, as the SDK's `_build_req_with_old_signature` builds it."""
    from harvest.api import signing_v1

    params = {
        **(extra or {}),
        "Action": action,
        "Nonce": str(nonce),
        "Timestamp": str(timestamp),
        "Version": API_VERSION,
        "Region": REGION,
        "SecretId": SECRET_ID,
        "SignatureMethod": method,
    }
    params["Signature"] = signing_v1.sign(SECRET_KEY, signing_v1.string_to_sign("POST", host, params), method)
    return params


def post_form(stack: ApiStack, form: dict[str, str]) -> dict[str, Any]:
    import requests

    answer = requests.post(f"http://{stack.endpoint}/", data=form, timeout=10)
    return dict(answer.json()["Response"])


def test_v1_requests_get_the_same_skew_and_replay_rules(tmp_path: Any, no_proxy: None) -> None:
    from tests.support.api_stack import running_api_stack

    with running_api_stack(tmp_path, replay_protection=True) as stack:
        now = int(time.time())
        # GIVEN a v1-signed Delete (mutating: replay-guarded) THEN it is answered once (the job does not
        # exist), and refused as a replay after that
        form = v1_form("DeleteStreamPackageHarvestJob", now, 7, stack.endpoint, extra={"ID": "nothing-here"})
        assert post_form(stack, form)["Error"]["Code"] == "InvalidParameter.NotFound"
        assert post_form(stack, form)["Error"]["Code"] == "AuthFailure.SignatureFailure"
        # AND a v1-signed read sent twice is served twice (pollers repeat reads)
        read = v1_form("DescribeStreamPackageHarvestJobs", now, 6, stack.endpoint)
        assert "Error" not in post_form(stack, read)
        assert "Error" not in post_form(stack, read)
        # AND a timestamp outside the 300 s window expires, whichever side of now it is on
        for skew in (-310, 310):
            # from the clock now, not from `now`: a slow machine spends seconds on the requests above
            stale = v1_form("DescribeStreamPackageHarvestJobs", int(time.time()) + skew, 8, stack.endpoint)
            assert post_form(stack, stale)["Error"]["Code"] == "AuthFailure.SignatureExpire"
        # AND a tampered parameter breaks the signature
        tampered = {**v1_form("DescribeStreamPackageHarvestJobs", now, 9, stack.endpoint), "PageSize": "5"}
        assert post_form(stack, tampered)["Error"]["Code"] == "AuthFailure.SignatureFailure"
