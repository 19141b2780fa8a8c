"""Named errors, each carrying the Tencent Cloud API 3.0 error code it answers with.

This module is the one table that maps failures to API codes: handlers never pick a code by
reading message text. Every code is one the installed SDK's `mdp/v20200527/errorcodes.py` lists,
or one of API 3.0's common codes, used the way StreamPackage's sibling actions use them: a missing
job is `InvalidParameter.NotFound`, a malformed ID `InvalidParameter.Id`, a job in the wrong state
for the action `InvalidParameter.State` (tests/unit/test_error_codes.py checks each code against
the SDK, and README.md's table against this one).

`API_CODES` is that table: code -> (English, Chinese) summary; api/i18n.py renders messages in
Chinese for X-TC-Language zh-CN.
"""

from __future__ import annotations

API_CODES: dict[str, tuple[str, str]] = {
    # common codes (API 3.0)
    "AuthFailure.InvalidAuthorization": (
        "the Authorization header is malformed",
        "请求头部的 Authorization 不符合规范",
    ),
    "AuthFailure.SecretIdNotFound": ("the SecretId is unknown or disabled", "密钥不存在或已被禁用"),
    "AuthFailure.SignatureExpire": ("the signature has expired", "签名过期"),
    "AuthFailure.SignatureFailure": ("the signature is wrong", "签名错误"),
    "AuthFailure.TokenFailure": ("the token is wrong, expired or missing", "临时证书 Token 错误、过期或缺失"),
    "UnauthorizedOperation": ("the credential may not perform this operation", "未授权操作"),
    "InvalidAction": ("the action does not exist", "接口不存在"),
    "NoSuchVersion": ("the API version does not exist", "接口版本不存在"),
    "UnsupportedRegion": ("the region is not served here", "接口不支持所传地域"),
    "UnsupportedProtocol": (
        "the HTTP method or request form is not supported",
        "HTTP(S) 请求协议错误,只支持 GET 和 POST 请求",
    ),
    "RequestLimitExceeded": ("too many requests", "请求的次数超过了频率限制"),
    "RequestSizeLimitExceeded": ("the request is too large", "请求包超过限制大小"),
    "InvalidParameter": ("a parameter is malformed", "参数错误(包括参数格式、类型等错误)"),
    "InvalidParameterValue": ("a parameter value is not allowed", "参数取值错误"),
    "MissingParameter": ("a required parameter is missing", "缺少参数错误"),
    "UnknownParameter": ("an unknown parameter was sent", "未知参数错误"),
    "ResourceInUse": ("the resource is already in use", "资源被占用"),
    "FailedOperation": ("the operation failed", "操作失败"),
    "InternalError": ("internal error", "内部错误"),
    # StreamPackage (mdp 2020-05-27 errorcodes.py)
    "InvalidParameter.Id": ("the ID is invalid", "无效的 Id"),
    "InvalidParameter.Name": ("the name is invalid", "无效的名称"),
    "InvalidParameter.NotFound": ("the resource was not found", "找不到资源"),
    "InvalidParameter.State": ("the resource's state does not allow this", "状态无效"),
    "InvalidParameter.PageNum": ("PageNum is invalid", "无效的 PageNum"),
    "InvalidParameter.PageSize": ("PageSize is invalid", "无效的 PageSize"),
    "InvalidParameter.Url": ("the URL is invalid", "无效的 Url"),
}


def check_code(code: str) -> str:
    """`code` itself, once it is known to be in API_CODES (a typo here is a bug, caught by tests)."""
    if code not in API_CODES:
        raise ValueError(f"{code!r} is not in errors.API_CODES")
    return code


class HarvestError(Exception):
    """Base of every error the service raises on purpose.

    `message` is English; `zh` the same in Chinese where the raiser wrote one (X-TC-Language zh-CN).
    """

    code = "InternalError"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        check_code(cls.code)

    def __init__(self, message: str, zh: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh


# --- request envelope and authentication -------------------------------------------------------


class AuthFailure(HarvestError):
    code = "AuthFailure.SignatureFailure"


class SignatureFailure(AuthFailure):
    code = "AuthFailure.SignatureFailure"


class SecretIdNotFound(AuthFailure):
    code = "AuthFailure.SecretIdNotFound"


class SignatureExpire(AuthFailure):
    code = "AuthFailure.SignatureExpire"


class InvalidAuthorization(AuthFailure):
    code = "AuthFailure.InvalidAuthorization"


class TokenFailure(AuthFailure):
    code = "AuthFailure.TokenFailure"


class UnauthorizedOperation(HarvestError):
    """The key is valid but its scope (actions, channels, buckets) does not cover the request."""

    code = "UnauthorizedOperation"


class InvalidAction(HarvestError):
    code = "InvalidAction"


class NoSuchVersion(HarvestError):
    code = "NoSuchVersion"


class UnsupportedRegion(HarvestError):
    code = "UnsupportedRegion"


class UnsupportedProtocol(HarvestError):
    code = "UnsupportedProtocol"


class RequestLimitExceeded(HarvestError):
    code = "RequestLimitExceeded"


class RequestSizeLimitExceeded(HarvestError):
    code = "RequestSizeLimitExceeded"


# --- parameters ---------------------------------------------------------------------------------


class InvalidParameter(HarvestError):
    """Malformed request: not JSON, or a field of the wrong JSON type."""

    code = "InvalidParameter"


class MissingParameter(HarvestError):
    code = "MissingParameter"


class UnknownParameter(HarvestError):
    code = "UnknownParameter"


# The mdp code for a field that has one of its own; any other field's malformed value is plain
# InvalidParameter, and a well-formed value a rule refuses is InvalidParameterValue.
FIELD_CODES: dict[str, str] = {
    "ID": "InvalidParameter.Id",
    "IDs": "InvalidParameter.Id",
    "ChannelName": "InvalidParameter.Name",
    "EndpointName": "InvalidParameter.Name",
    "PageNum": "InvalidParameter.PageNum",
    "PageSize": "InvalidParameter.PageSize",
    "CallbackURL": "InvalidParameter.Url",
}
VALUE_REFUSED = "InvalidParameterValue"


class FieldError(HarvestError):
    """A field is present and well-typed but breaks a rule; `field` names it, the code follows FIELD_CODES."""

    def __init__(self, field: str, message: str, code: str | None = None, zh: str = "") -> None:
        super().__init__(message, zh)
        self.field = field
        self.code = check_code(code or FIELD_CODES.get(field, "InvalidParameter"))


# --- resources and state ------------------------------------------------------------------------


class NotFound(HarvestError):
    code = "InvalidParameter.NotFound"


class JobNotFound(NotFound):
    pass


class ChannelNotFound(NotFound):
    pass


class EndpointNotFound(NotFound):
    pass


class JobAlreadyExists(HarvestError):
    code = "ResourceInUse"


class WrongState(HarvestError):
    """The job exists, but its status does not allow the action."""

    code = "InvalidParameter.State"


class JobNotDeletable(WrongState):
    """Only Completed or Failed jobs may be deleted."""


class JobNotCancellable(WrongState):
    """Only a Running job can be cancelled."""


class InvalidTransition(HarvestError):
    """A status change the job state machine does not allow (a stale or repeated write)."""

    code = "FailedOperation"


# --- configuration and infrastructure (never shown to clients beyond "InternalError") -----------


class ConfigError(HarvestError):
    """Settings or the channel registry are wrong; raised at start-up, never to API clients."""


class StorageError(HarvestError):
    pass


class QueueError(HarvestError):
    pass


# --- harvesting ---------------------------------------------------------------------------------


class HarvestFailure(HarvestError):
    """The job cannot produce a complete asset; the message becomes the job's ErrMessage."""

    code = "FailedOperation"


class PlaylistError(HarvestFailure):
    """A playlist could not be fetched, parsed, or does not cover the window."""


class WindowNotCovered(PlaylistError):
    """The playlists do not (yet) hold the whole window: near the live edge, worth another look."""


class PlaylistFetchError(PlaylistError):
    """A playlist could not be fetched after every retry (as opposed to fetched but unusable)."""


class SegmentFetchError(HarvestFailure):
    """A segment (or key, init section) could not be fetched after every retry."""


class TargetRefused(HarvestError):
    """A URL the service was asked to fetch or post to is refused by the URL-safety policy."""

    code = "FailedOperation"


class RetryableError(HarvestError):
    """A transient failure worth another delivery of the same message (origin 5xx, DB hiccup)."""


class Unavailable(RetryableError):
    """A dependency (the database, the object store) cannot be reached or is busy right now.

    Not the job's fault: the step that met it is retried with backoff until the dependency is back,
    and its message is redelivered rather than counted towards a dead letter.
    """
