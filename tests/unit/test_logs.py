"""Structured JSON logs: one object per line on stdout, context fields, and secret redaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from harvest.logs import REDACTED, JsonFormatter, RedactionFilter, Redactor, configure_logging, log_context


class _Lines(logging.Handler):
    """Collects formatted lines through the same filter and formatter configure_logging installs."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.addFilter(RedactionFilter(Redactor(secrets)))
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("harvest.test_logs")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()
    log.propagate = True


def test_a_record_is_one_json_object_with_the_core_fields(logger: logging.Logger) -> None:
    # GIVEN a logger writing through the JSON formatter
    lines = _Lines()
    logger.addHandler(lines)
    # WHEN a message with arguments and extra fields is logged inside a context
    with log_context(request_id="req-1", job_id="job-9"):
        logger.info("planned %d chunks", 3, extra={"segments": 42, "channel": "news"})
    # THEN it is one line of JSON with the core fields, the context and the extras
    assert len(lines.lines) == 1
    assert "\n" not in lines.lines[0]
    entry = lines.entries()[0]
    assert entry["level"] == "INFO"
    assert entry["logger"] == "harvest.test_logs"
    assert entry["message"] == "planned 3 chunks"
    assert entry["request_id"] == "req-1"
    assert entry["job_id"] == "job-9"
    assert entry["segments"] == 42
    assert entry["channel"] == "news"
    assert str(entry["time"]).endswith("Z")


def test_log_context_nests_and_restores(logger: logging.Logger) -> None:
    # GIVEN nested contexts, the inner one setting only the job
    lines = _Lines()
    logger.addHandler(lines)
    with log_context(request_id="req-1"):
        with log_context(job_id="job-a"):
            logger.info("inner")
        logger.info("outer")
    logger.info("outside")
    # THEN the inner record has both ids, and leaving a block restores the previous values
    inner, outer, outside = lines.entries()
    assert (inner["request_id"], inner["job_id"]) == ("req-1", "job-a")
    assert (outer["request_id"], outer["job_id"]) == ("req-1", "")
    assert (outside["request_id"], outside["job_id"]) == ("", "")


def test_an_explicit_job_id_extra_wins_over_the_context(logger: logging.Logger) -> None:
    lines = _Lines()
    logger.addHandler(lines)
    # WHEN a record names its job explicitly outside any context
    logger.warning("job failed", extra={"job_id": "job-7"})
    # THEN that job id is logged
    assert lines.entries()[0]["job_id"] == "job-7"


def test_secret_named_fields_are_redacted(logger: logging.Logger) -> None:
    # GIVEN extra fields whose names say they hold secrets, nested ones included
    lines = _Lines()
    logger.addHandler(lines)
    logger.info(
        "request",
        extra={
            "SecretKey": "abcd1234",
            "headers": {"Authorization": "TC3-HMAC-SHA256 Credential=AKID/..., Signature=ff", "Host": "h"},
            "sign": "b276e9751b35f01e28bf285d4175b495",
            "password": "hunter2",
            "x_tc_token": "tok",
        },
    )
    # THEN their values are replaced and the rest survives
    entry = lines.entries()[0]
    assert entry["SecretKey"] == REDACTED
    assert entry["sign"] == REDACTED
    assert entry["password"] == REDACTED
    assert entry["x_tc_token"] == REDACTED
    assert entry["headers"] == {"Authorization": REDACTED, "Host": "h"}
    assert "hunter2" not in lines.lines[0]
    assert "b276e975" not in lines.lines[0]


def test_configured_secret_strings_never_appear_anywhere(logger: logging.Logger) -> None:
    # GIVEN a configured secret that shows up in the message, an argument, an extra and a traceback
    secret = "s3cr3t-VALUE-xyz"
    lines = _Lines(secrets=(secret,))
    logger.addHandler(lines)
    try:
        raise ValueError(f"connect failed: password {secret} refused")
    except ValueError:
        logger.exception("boom %s", f"the key is {secret}", extra={"note": f"x{secret}y"})
    # THEN none of the output contains it
    assert secret not in lines.lines[0]
    entry = lines.entries()[0]
    assert REDACTED in str(entry["message"])
    assert REDACTED in str(entry["exception"])
    assert entry["note"] == f"x{REDACTED}y"


def test_secrets_in_free_text_key_value_pairs_are_redacted(logger: logging.Logger) -> None:
    lines = _Lines()
    logger.addHandler(lines)
    # WHEN a message carries a query string and a header dict's repr
    logger.info("callback ?t=1&sign=abcdef0123 headers={'Authorization': 'TC3-HMAC-SHA256 x'} job_id=j1")
    # THEN the secret-named values are gone, other pairs stay
    message = str(lines.entries()[0]["message"])
    assert "abcdef0123" not in message
    assert "TC3-HMAC" not in message
    assert "t=1" in message
    assert "job_id=j1" in message


def test_configure_logging_is_idempotent_and_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        # WHEN configure_logging runs twice, the second time with a secret
        first = configure_logging("INFO")
        second = configure_logging("DEBUG", secrets=("topsecret-123",))
        # THEN one handler is installed (now or by an earlier test), the level follows the last call
        # and secrets apply
        assert first is second
        assert [h for h in root.handlers if h is first] == [first]
        assert [h for h in root.handlers if h not in before] in ([], [first])
        assert root.level == logging.DEBUG
        logging.getLogger("harvest.test_logs.stdout").debug("key material topsecret-123 here")
        out = [line for line in capsys.readouterr().out.splitlines() if "key material" in line]
        assert len(out) == 1
        assert json.loads(out[0])["message"] == f"key material {REDACTED} here"
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
        import harvest.logs as logs_module

        logs_module._installed = None


def test_urls_lose_user_info_and_queries_and_local_paths_their_folders(logger: logging.Logger) -> None:
    # GIVEN a logger writing through the JSON formatter
    lines = _Lines()
    logger.addHandler(lines)
    try:
        raise OSError("[Errno 20] Not a directory: '/srv/data/.harvest/cos/b/out/x.ts'")
    except OSError:
        # WHEN a message, an extra and an exception carry URL credentials, tokens and local paths
        logger.exception(
            "playlist %s failed; data in /srv/data/.harvest/harvest.db",
            "http://user:pa55@origin.example/a.m3u8?token=t0k",
            extra={"endpoint": "https://u:p@cdn.example/x?sig=abc"},
        )
    # THEN none of them appear, while hosts, URL paths and file names stay
    line = lines.lines[0]
    for leaked in ("pa55", "user:", "t0k", "u:p@", "sig=abc", "/srv/data"):
        assert leaked not in line
    entry = lines.entries()[0]
    assert entry["message"] == "playlist http://origin.example/a.m3u8 failed; data in .../harvest.db"
    assert entry["endpoint"] == "https://cdn.example/x"
    assert "'.../x.ts'" in str(entry["exception"])
    assert 'File "' in str(entry["exception"])

