"""Structured logs: one JSON object per line on stdout, with secrets, URL tokens and local paths redacted.

SCF ships whatever a function writes to stdout to its log service line by line, so one JSON object
per line keeps every record (tracebacks included) searchable as a unit. Handlers tag records with
the invocation's request id and the job they work on through `log_context`; the formatter reads
them from context variables, so code below the handlers never passes them around.

Nothing happens at import: `configure_logging()` installs the stdout handler (once, however often
it is called).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

REDACTED = "***"

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("harvest_request_id", default="")
_job_id: contextvars.ContextVar[str] = contextvars.ContextVar("harvest_job_id", default="")

# Keys whose values are secrets by name: SecretKey, X-TC-Token, Authorization, sign, password ...
_SECRET_KEY_NAME = re.compile(r"secret|key|token|passw|authorization|sign|credential", re.IGNORECASE)
# The same names inside free text: `sign=abc`, `'Authorization': 'TC3 ...'`, `"SecretKey": "..."`.
_SECRET_IN_TEXT = re.compile(
    r"""(?P<name>\b[\w-]*(?:secret|key|token|passw|authorization|sign|credential)[\w-]*)"""
    r"""(?P<sep>=|['"]\s*:\s*)(?P<quote>['"]?)(?P<value>[^\s'"&,;}]+)""",
    re.IGNORECASE,
)

# Any URL (http, postgresql, ...): user info, query and fragment are cut from it (they carry tokens).
_URL = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"<>]+""")
_URL_TAIL = ".,;:)]}!"  # sentence punctuation after a URL, kept
# An absolute local path of two parts or more, outside any URL: only its last part is kept.
_LOCAL_PATH = re.compile(r"""(?<![\w.:/~-])/(?:[^\s/'"<>:]+/)+[^\s/'"<>:]*""")
_TRACEBACK_FRAME = re.compile(r'^\s*File "')


def public_url(url: str) -> str:
    """`url` without user info, query or fragment (trailing sentence punctuation kept)."""
    core = url.rstrip(_URL_TAIL)
    tail = url[len(core) :]
    scheme, _, rest = core.partition("://")
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}{tail}"


def _local_paths(text: str) -> str:
    return _LOCAL_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rpartition("/")[2], text)


def public_text(text: str) -> str:
    """Text fit for API clients and logs: URLs lose user info, queries and fragments; local paths
    (a data dir, a temp file) keep only their last part. ErrMessage, callbacks and logs go through it.
    """
    out, position = [], 0
    for match in _URL.finditer(text):
        out += [_local_paths(text[position : match.start()]), public_url(match.group(0))]
        position = match.end()
    out.append(_local_paths(text[position:]))
    return "".join(out)


def _public_traceback(text: str) -> str:
    # Frame lines name source files, which help whoever reads the log and reveal no data.
    return "\n".join(line if _TRACEBACK_FRAME.match(line) else public_text(line) for line in text.split("\n"))


# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_CORE_FIELDS = frozenset({"time", "level", "logger", "message"})


@contextmanager
def log_context(request_id: str | None = None, job_id: str | None = None) -> Iterator[None]:
    """Tag every record logged inside the block; None leaves the outer value in place."""
    tokens: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]] = []
    if request_id is not None:
        tokens.append((_request_id, _request_id.set(request_id)))
    if job_id is not None:
        tokens.append((_job_id, _job_id.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class Redactor:
    """Replaces secrets with '***': values of secret-named keys, and every configured secret string."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        merged = set(self._secrets) | {s for s in secrets if s}
        self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        return _SECRET_IN_TEXT.sub(lambda m: f"{m['name']}{m['sep']}{m['quote']}{REDACTED}", value)

    def value(self, value: Any, key: str = "") -> Any:
        if key and _SECRET_KEY_NAME.search(key) and value not in (None, ""):
            return REDACTED
        if isinstance(value, str):
            return self.text(public_text(value))
        if isinstance(value, dict):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(v) for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.text(str(value))


class RedactionFilter(logging.Filter):
    """Rewrites a record in place so no formatter or handler after it can see a secret."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string must not lose the record
            message = f"{record.msg} {record.args!r}"
        record.msg = self.redactor.text(public_text(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.text(_public_traceback(record.exc_text))
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, self.redactor.value(value, name))
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, job_id, then any `extra=` fields, as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id.get(),
            "job_id": _job_id.get(),
        }
        for name, value in vars(record).items():
            # An explicit `extra={"job_id": ...}` wins over the context; the four core fields never move.
            if name not in _STANDARD_ATTRS and name not in _CORE_FIELDS:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StdoutHandler(logging.Handler):
    """Writes to whatever sys.stdout is at emit time (SCF's collector, or a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        # logging's contract: a handler never raises into the code that logged; handleError reports
        # the failure on stderr with its traceback.
        except Exception:  # noqa: BLE001
            self.handleError(record)


_lock = threading.Lock()
_installed: _StdoutHandler | None = None
_redactor = Redactor()


def configure_logging(level: str | int = "INFO", secrets: Iterable[str] = ()) -> logging.Handler:
    """Install the JSON stdout handler on the root logger once; later calls set the level and add secrets."""
    global _installed
    with _lock:
        _redactor.add(secrets)
        if _installed is None:
            handler = _StdoutHandler()
            handler.addFilter(RedactionFilter(_redactor))
            handler.setFormatter(JsonFormatter())
            logging.getLogger().addHandler(handler)
            _installed = handler
        logging.getLogger().setLevel(level.upper() if isinstance(level, str) else level)
        return _installed
