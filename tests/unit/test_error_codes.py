"""Every code the API can answer with is in the SDK's vocabulary: mdp's errorcodes or API 3.0's common list.

The common list is Tencent's "Common Error Codes" table (e.g.
https://www.tencentcloud.com/document/api/1063/57616), copied here as the reference the service is
held to; mdp's codes come from the installed SDK itself, so an SDK upgrade that drops one fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tencentcloud.mdp.v20200527.errorcodes as mdp_errorcodes

from harvest import errors
from harvest.errors import API_CODES, FIELD_CODES, FieldError, HarvestError

COMMON_CODES = frozenset(
    {
        "ActionOffline",
        "AuthFailure.InvalidAuthorization",
        "AuthFailure.InvalidSecretId",
        "AuthFailure.MFAFailure",
        "AuthFailure.SecretIdNotFound",
        "AuthFailure.SignatureExpire",
        "AuthFailure.SignatureFailure",
        "AuthFailure.TokenFailure",
        "AuthFailure.UnauthorizedOperation",
        "DryRunOperation",
        "FailedOperation",
        "InternalError",
        "InvalidAction",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidRequest",
        "IpInBlacklist",
        "IpNotInWhitelist",
        "LimitExceeded",
        "MissingParameter",
        "NoSuchProduct",
        "NoSuchVersion",
        "RequestLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
        "RequestLimitExceeded.IPLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "RequestSizeLimitExceeded",
        "ResourceInUse",
        "ResourceInsufficient",
        "ResourceNotFound",
        "ResourceUnavailable",
        "ResponseSizeLimitExceeded",
        "ServiceUnavailable",
        "UnauthorizedOperation",
        "UnknownParameter",
        "UnsupportedOperation",
        "UnsupportedProtocol",
        "UnsupportedRegion",
    }
)
README = Path(__file__).resolve().parents[2] / "README.md"


def _sdk_mdp_codes() -> set[str]:
    # errorcodes.py holds one constant per code, e.g. INVALIDPARAMETER_NOTFOUND = 'InvalidParameter.NotFound'.
    return {
        value for name, value in vars(mdp_errorcodes).items() if name.isupper() and isinstance(value, str)
    }


def _all_subclasses(cls: type[HarvestError]) -> list[type[HarvestError]]:
    found: list[type[HarvestError]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def test_the_sdk_lists_the_mdp_codes_this_test_relies_on() -> None:
    assert {"InvalidParameter.NotFound", "InvalidParameter.Id", "InvalidParameter.State"} <= _sdk_mdp_codes()


def test_every_code_in_the_table_is_an_mdp_or_common_code() -> None:
    vocabulary = _sdk_mdp_codes() | COMMON_CODES
    outside = sorted(code for code in API_CODES if code not in vocabulary)
    assert outside == []


def test_every_named_error_answers_with_a_code_from_the_table() -> None:
    classes: list[type[HarvestError]] = [HarvestError, *_all_subclasses(HarvestError)]
    assert len(classes) > 30
    assert {cls.__name__: cls.code for cls in classes if cls.code not in API_CODES} == {}
    # FieldError picks its code per field; every one of those is in the table too.
    assert set(FIELD_CODES.values()) | {errors.VALUE_REFUSED, "InvalidParameter"} <= set(API_CODES)


def test_a_code_outside_the_table_cannot_be_raised() -> None:
    with pytest.raises(ValueError, match=r"InvalidParameter\.StartTime"):
        FieldError("StartTime", "bad", code="InvalidParameter.StartTime")


def test_every_code_has_an_english_and_a_chinese_summary() -> None:
    for code, (english, chinese) in API_CODES.items():
        assert english, code
        assert chinese, code
        assert re.search(r"[\u4e00-\u9fff]", chinese), code


def test_the_readme_table_lists_exactly_the_codes_of_errors_py() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Error codes", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([A-Za-z.]+)` \|", section, flags=re.MULTILINE))
    assert listed == set(API_CODES)
