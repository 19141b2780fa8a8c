"""Named errors, each carrying the Tencent Cloud API 3.0 error code it answers with.

This module is the one table that maps failures to API codes: handlers never pick a code by
reading message text. Codes follow the API 3.0 common list (AuthFailure.*, InvalidParameter,
MissingParameter, ...) and StreamPackage's `InvalidParameter.<Field>` convention; where the
product documents nothing (a missing job, a duplicate ID) we use the closest common code with a
sub-code that names the resource.
"""

from __future__ import annotations


class HarvestError(Exception):
    """Base of every error the service raises on purpose."""

    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- request envelope and authentication -------------------------------------------------------


class AuthFailure(HarvestError):
    code = "AuthFailure"


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


class FieldError(HarvestError):
    """A field is present and well-typed but breaks a rule; the code names the field."""

    def __init__(self, field: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code or f"InvalidParameter.{field}"


# --- resources and state ------------------------------------------------------------------------


class JobNotFound(HarvestError):
    code = "ResourceNotFound.HarvestJob"


class JobAlreadyExists(HarvestError):
    code = "ResourceInUse.HarvestJob"


class JobNotDeletable(HarvestError):
    """Only Completed or Failed jobs may be deleted."""

    code = "UnsupportedOperation.HarvestJobRunning"


class ChannelNotFound(HarvestError):
    code = "ResourceNotFound.Channel"


class EndpointNotFound(HarvestError):
    code = "ResourceNotFound.Endpoint"


class InvalidTransition(HarvestError):
    """A status change the job state machine does not allow (a stale or repeated write)."""

    code = "FailedOperation.InvalidTransition"


# --- configuration and infrastructure -----------------------------------------------------------


class ConfigError(HarvestError):
    """Settings or the channel registry are wrong; raised at start-up, never to API clients."""

    code = "InternalError.Config"


class StorageError(HarvestError):
    code = "InternalError.Storage"


class QueueError(HarvestError):
    code = "InternalError.Queue"


# --- harvesting ---------------------------------------------------------------------------------


class HarvestFailure(HarvestError):
    """The job cannot produce a complete asset; the message becomes the job's ErrMessage."""

    code = "FailedOperation.Harvest"


class PlaylistError(HarvestFailure):
    """A playlist could not be fetched, parsed, or does not cover the window."""


class WindowNotCovered(PlaylistError):
    """The playlists do not (yet) hold the whole window: near the live edge, worth another look."""


class PlaylistFetchError(PlaylistError):
    """A playlist could not be fetched after every retry (as opposed to fetched but unusable)."""


class SegmentFetchError(HarvestFailure):
    """A segment (or key, init section) could not be fetched after every retry."""


class RetryableError(HarvestError):
    """A transient failure worth another delivery of the same message (origin 5xx, DB hiccup)."""

    code = "InternalError.Retryable"
