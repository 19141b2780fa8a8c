"""X-TC-Language: every error the API writes comes back in Chinese for zh-CN, English otherwise.

Each bad request is sent twice through the SDK (ClientProfile language en-US, then zh-CN). The
Chinese answer must carry the same code, be Chinese, and be a translation: not the code's
summary with the English detail glued on (the fallback for a message the catalogue lacks).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tests.support.api_stack import REGION, SECRET_ID, SECRET_KEY, ApiStack, job_params

from harvest.handlers.api import API_VERSION

pytest_plugins = ("tests.support.api_stack",)

NOW = int(time.time())
CREATE = "CreateStreamPackageHarvestJob"
CJK = re.compile(r"[\u4e00-\u9fff]")

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("missing", CREATE, {k: v for k, v in job_params("j").items() if k != "ChannelName"}),
    ("unknown", CREATE, {**job_params("j"), "Colour": "red"}),
    ("type", CREATE, {**job_params("j"), "ID": 5}),
    ("id", CREATE, job_params("a b")),
    ("channel", CREATE, job_params("j", ChannelName="weather")),
    ("channel-name", CREATE, job_params("j", ChannelName="no spaces allowed")),
    ("endpoint", CREATE, job_params("j", EndpointName="dash")),
    ("time-format", CREATE, job_params("j", TimeFormat="unix")),
    ("start", CREATE, job_params("j", StartTime="yesterday")),
    ("millis", CREATE, job_params("j", StartTime=str(NOW * 1000))),
    ("iso", CREATE, job_params("j", TimeFormat="ISO-8601", StartTime="noon", EndTime="noon")),
    ("future", CREATE, job_params("j", EndTime=str(NOW + 600))),
    ("too-long", CREATE, job_params("j", StartTime=str(NOW - 90000), EndTime=str(NOW - 60))),
    ("too-old", CREATE, job_params("j", StartTime=str(NOW - 90000), EndTime=str(NOW - 89000))),
    ("backwards", CREATE, job_params("j", StartTime=str(NOW - 60), EndTime=str(NOW - 120))),
    ("destination", CREATE, job_params("j", Destination="http://example.com/x")),
    ("region", CREATE, job_params("j", Destination="https://b-1250000000.cos.ap-guangzhou.myqcloud.com/")),
    ("manifest", CREATE, job_params("j", Manifest="../x.m3u8")),
    ("callback", CREATE, job_params("j", CallbackURL="ftp://example.com/x")),
    ("private-callback", CREATE, job_params("j", CallbackURL="http://127.0.0.1/hook")),
    ("not-found", "DescribeStreamPackageHarvestJob", {"ID": "nobody"}),
    ("page-num", "DescribeStreamPackageHarvestJobs", {"PageNum": 0}),
    ("page-size", "DescribeStreamPackageHarvestJobs", {"PageSize": 1001}),
    ("ids", "DeleteStreamPackageHarvestJobs", {"IDs": []}),
    ("action", "DescribeNothing", {}),
]


def call(stack: ApiStack, language: str, action: str, params: dict[str, Any], key: str = SECRET_KEY) -> Any:
    cred = credential.Credential(SECRET_ID, key)
    client = CommonClient("mdp", API_VERSION, cred, REGION, stack.profile(language=language))
    with pytest.raises(TencentCloudSDKException) as caught:
        client.call_json(action, params)
    return caught.value


def check_translated(english: Any, chinese: Any) -> None:
    assert chinese.get_code() == english.get_code()
    assert CJK.search(chinese.get_message()), chinese.get_message()
    assert not CJK.search(english.get_message()), english.get_message()
    # A translation, not the fallback "<summary>:<English detail>"
    assert english.get_message() not in chinese.get_message(), chinese.get_message()


@pytest.mark.parametrize(("case", "action", "params"), CASES, ids=[case for case, _, _ in CASES])
def test_every_error_is_written_in_the_language_asked_for(
    api_stack: ApiStack, case: str, action: str, params: dict[str, Any]
) -> None:
    check_translated(call(api_stack, "en-US", action, params), call(api_stack, "zh-CN", action, params))


def test_state_errors_and_signature_errors_are_translated_too(api_stack: ApiStack) -> None:
    api_stack.create(job_params("running"))
    for action, params in [
        (CREATE, job_params("running")),
        ("DeleteStreamPackageHarvestJob", {"ID": "running"}),
    ]:
        check_translated(call(api_stack, "en-US", action, params), call(api_stack, "zh-CN", action, params))
    wrong = [
        call(api_stack, language, "DescribeStreamPackageHarvestJobs", {}, key="wrong")
        for language in ("en-US", "zh-CN")
    ]
    check_translated(*wrong)
