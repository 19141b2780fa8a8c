"""Settings, read once from the environment at start-up and passed in explicitly.

Every knob is an environment variable named HARVEST_*; `harvest serve` options set the same
variables' values. Nothing here runs at import time: call `Settings.from_env()`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from harvest.domain.access import ALL, KeyScope, parse_scope, scope_from_mapping
from harvest.domain.destination import parse_destination
from harvest.errors import ConfigError, FieldError, HarvestError

DEFAULT_REGION = "ap-singapore"
# Zone-less ISO-8601 times are read here. Tencent's API examples are written in UTC+8 (their
# offsets say +08:00), and its console shows China Standard Time; both default regions' users
# (ap-singapore, ap-guangzhou) live in UTC+8 as well.
DEFAULT_TIMEZONE = "Asia/Shanghai"

# Regions where CKafka offers SendMessage, its HTTP access layer (CKafka API doc 597/44679); the
# CKafka queue cannot publish anywhere else.
CKAFKA_HTTP_REGIONS = frozenset(
    {
        "ap-beijing",
        "ap-chengdu",
        "ap-chongqing",
        "ap-guangzhou",
        "ap-nanjing",
        "ap-seoul",
        "ap-shanghai",
        "ap-singapore",
        "ap-tokyo",
        "na-siliconvalley",
    }
)

# What each SCF function must be given (serverless.yml `environments`), checked when it starts on
# SCF. Without them a function would fall back to the one-machine defaults (SQLite under a
# read-only code directory, the local-disk bucket), so it refuses to start instead.
_CLOUD_BACKENDS = (
    "HARVEST_REGION",
    "HARVEST_DATABASE_URL",
    "HARVEST_QUEUE",
    "HARVEST_CKAFKA_DATAHUB_ID",
    "HARVEST_CKAFKA_FINALIZE_DATAHUB_ID",
    "HARVEST_CHANNELS",
)
SCF_REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "api": (*_CLOUD_BACKENDS, "HARVEST_SECRET_ID", "HARVEST_SECRET_KEY"),
    "worker": (*_CLOUD_BACKENDS, "HARVEST_OBJECT_STORE"),
    "finalizer": (*_CLOUD_BACKENDS, "HARVEST_OBJECT_STORE"),
    "live_event_end": (*_CLOUD_BACKENDS, "HARVEST_CALLBACK_KEY", "HARVEST_DEFAULT_DESTINATION"),
    "sweeper": (*_CLOUD_BACKENDS, "HARVEST_OBJECT_STORE"),
}
# The values a function on SCF must have for those settings: anything else is a one-machine default.
_SCF_VALUES = {"HARVEST_QUEUE": "ckafka", "HARVEST_OBJECT_STORE": "cos"}
# SCF injects the execution role's temporary keys under these names (583/32748), only when the
# function has a role.
ROLE_CREDENTIALS = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY")


def running_on_scf(env: Mapping[str, str] | None = None) -> bool:
    """True inside an SCF instance: the platform sets TENCENTCLOUD_RUNENV=SCF (583/32748)."""
    env = os.environ if env is None else env
    return env.get("TENCENTCLOUD_RUNENV", "") == "SCF"


def check_scf_environment(function: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse to start an SCF function that lacks a setting it needs, naming each one."""
    env = os.environ if env is None else env
    required = SCF_REQUIRED_SETTINGS[function]
    missing = [name for name in (*required, *ROLE_CREDENTIALS) if not env.get(name, "").strip()]
    if missing:
        role_hint = (
            " (SCF sets TENCENTCLOUD_* only for a function with an execution role: set `role`)"
            if any(name in ROLE_CREDENTIALS for name in missing)
            else ""
        )
        raise ConfigError(f"the {function} function needs {', '.join(missing)} set{role_hint}")
    for name, wanted in _SCF_VALUES.items():
        value = env.get(name, "").strip()
        if name in required and value != wanted:
            raise ConfigError(f"{name} must be {wanted!r} on SCF, got {value!r}")
    if not env["HARVEST_DATABASE_URL"].strip().startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "HARVEST_DATABASE_URL must be a postgresql:// URL on SCF: the code directory is"
            " read-only and every instance must share one table"
        )


# What the lowest value of a range means, said in its error.
_RANGE_NOTES = {
    "HARVEST_RATE_LIMIT": "0 disables rate limiting",
    "HARVEST_DEAD_LETTER_HOLD": "0 fails the job at once",
}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser() if raw else None


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _credential_entry(item: str) -> tuple[str, str, str]:
    """`SecretId:SecretKey` or `SecretId:SecretKey:scope` (a scope has '=' in it: `actions=read;...`)."""
    sid, sep, rest = item.partition(":")
    if not sep or not sid or not rest:
        raise ConfigError(
            "HARVEST_CREDENTIALS entries look like SecretId:SecretKey or SecretId:SecretKey:scope,"
            " comma-separated"
        )
    key, sep, scope = rest.rpartition(":")
    if sep and key and "=" in scope:
        return sid, key, scope
    return sid, rest, ""


def _credentials_file(path: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"HARVEST_CREDENTIALS_FILE {path!r} cannot be read: {exc}") from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(entry, dict) for entry in keys):
        raise ConfigError(f"HARVEST_CREDENTIALS_FILE {path!r} must hold `keys:`, a list of mappings")
    for entry in keys:
        if not isinstance(entry.get("secret_id"), str) or not isinstance(entry.get("secret_key"), str):
            raise ConfigError(f"every key in {path!r} needs a secret_id and a secret_key (strings)")
    return keys


def parse_keys(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, KeyScope]]:
    """SecretId -> SecretKey, and SecretId -> scope for the keys that have one.

    Sources: HARVEST_SECRET_ID/HARVEST_SECRET_KEY (full access), HARVEST_CREDENTIALS (`id:key` or
    `id:key:scope` entries, comma-separated) and HARVEST_CREDENTIALS_FILE (YAML, `keys:` entries
    with secret_id, secret_key and optional actions, channels, buckets). See harvest.domain.access.
    """
    pairs: dict[str, str] = {}
    scopes: dict[str, KeyScope] = {}
    secret_id = env.get("HARVEST_SECRET_ID", "").strip()
    secret_key = env.get("HARVEST_SECRET_KEY", "").strip()
    if bool(secret_id) != bool(secret_key):
        raise ConfigError("set both HARVEST_SECRET_ID and HARVEST_SECRET_KEY, or neither")
    if secret_id:
        pairs[secret_id] = secret_key
    for item in _list(env, "HARVEST_CREDENTIALS"):
        sid, skey, scope = _credential_entry(item)
        pairs[sid] = skey
        if scope:
            scopes[sid] = parse_scope(scope)
    path = env.get("HARVEST_CREDENTIALS_FILE", "").strip()
    for entry in _credentials_file(path) if path else []:
        sid = entry["secret_id"].strip()
        pairs[sid] = entry["secret_key"].strip()
        if any(name in entry for name in ("actions", "channels", "buckets")):
            scopes[sid] = scope_from_mapping(entry)
    return pairs, scopes


def parse_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """SecretId -> SecretKey (every source of parse_keys)."""
    return parse_keys(env)[0]


@dataclass(frozen=True)
class Settings:
    region: str = DEFAULT_REGION
    timezone: str = DEFAULT_TIMEZONE  # IANA name; zone-less ISO-8601 StartTime/EndTime are read in it
    data_dir: Path = Path(".harvest")
    channels_file: Path = Path("channels.yaml")
    database_url: str = ""  # empty: SQLite file under data_dir
    credentials: dict[str, str] = field(default_factory=dict)
    key_scopes: dict[str, KeyScope] = field(default_factory=dict)  # keys absent here: full access
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 4  # concurrent queue consumers in `harvest serve`
    # API guards
    rate_limit: float = 20.0  # requests/s per SecretId and action; 0 disables
    max_body_bytes: int = 1024 * 1024
    max_connections: int = 2048  # harvest serve: open connections at once (also capped by the fd limit)
    request_head_timeout: float = 15.0  # harvest serve: a whole request head within this; keep-alive idle
    # harvest serve over HTTPS: a PEM certificate (chain after it) and its unencrypted key, or a
    # self-signed pair made under data_dir/tls/ (local/tls.py)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    signature_max_skew: int = 300
    replay_protection: bool = False  # refuse a signature seen before within the skew window
    # Destination defaults and limits
    default_destination: str = ""  # used when a Create omits Destination
    allowed_buckets: tuple[str, ...] = ()  # empty: any bucket in the region
    # Queue
    queue_max_attempts: int = 5
    visibility_timeout: float = 900.0
    dead_letter_hold: float = 3600.0  # serve: a dead-lettered job waits this long for a replay
    # Harvesting
    object_store: str = "local"  # local | cos
    queue_backend: str = "sql"  # sql | ckafka
    chunk_max_bytes: int = 512 * 1024 * 1024
    # Per process (one download pool): the most segments downloaded at once. 16 hides an origin's
    # latency (20 ms: 269 MB/s against 231 at 8); with the origin 0 ms away fewer are faster on 2
    # cores, so the pool finds how many pay, up to this (bench/README.md, round 4).
    download_concurrency: int = 16
    download_adaptive: bool = True  # false: always download_concurrency at once
    fetch_timeout: float = 10.0
    fetch_attempts: int = 5
    fetch_backoff: float = 0.2
    job_deadline: float = 6 * 3600.0  # sweeper fails Running jobs older than this
    copy_keys: bool = False  # keys stay on the key server unless the operator opts in
    # Playlist limits (a hostile or broken origin must not make a plan cost gigabytes)
    playlist_max_chars: int = 64 * 1024 * 1024
    playlist_max_lines: int = 2_000_000
    max_variants: int = 100  # per master: EXT-X-STREAM-INF + EXT-X-I-FRAME-STREAM-INF
    max_renditions: int = 200  # per master: EXT-X-MEDIA
    max_plan_tasks: int = 150_000  # downloads in one job's plan (engine.context.MAX_PLAN_TASKS)
    allow_private_callbacks: bool = False
    callback_deadline: float = 10.0  # one CallbackURL attempt, whole: connect, send, answer headers
    # hosts, addresses or CIDR networks that origin and callback requests may reach although private
    allowed_private_hosts: tuple[str, ...] = ()
    cos_multipart_threshold: int = 16 * 1024 * 1024
    # cloud (issue: SCF deployment)
    cos_endpoint_ip: str = ""  # for tests: send COS requests to IP:PORT with the proper Host header
    cos_endpoint_port: int = 0
    cos_scheme: str = "https"
    ckafka_datahub_id: str = ""
    ckafka_finalize_datahub_id: str = ""
    ckafka_callback_datahub_id: str = ""  # empty: callbacks travel on the finalize topic
    tencent_api_endpoint: str = ""  # override for the ckafka API host (tests)
    cloud_secret_id: str = ""
    cloud_secret_key: str = ""
    cloud_token: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def destination_buckets(self) -> tuple[str, ...]:
        """The buckets a Destination may name; empty: any bucket in the region.

        HARVEST_ALLOWED_BUCKETS when set (`*`: any); otherwise the bucket of
        HARVEST_DEFAULT_DESTINATION, so a service set up for one bucket does not write to others."""
        if self.allowed_buckets:
            return () if ALL in self.allowed_buckets else self.allowed_buckets
        if self.default_destination:
            try:
                return (parse_destination(self.default_destination, self.region).bucket,)
            except HarvestError:
                return ()  # a malformed default is reported when a Create uses it
        return ()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'harvest.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        credentials, key_scopes = parse_keys(env)
        settings = cls(
            region=env.get("HARVEST_REGION", "").strip() or DEFAULT_REGION,
            timezone=env.get("HARVEST_TIMEZONE", "").strip() or DEFAULT_TIMEZONE,
            data_dir=Path(env.get("HARVEST_DATA_DIR", "").strip() or ".harvest"),
            channels_file=Path(env.get("HARVEST_CHANNELS", "").strip() or "channels.yaml"),
            database_url=env.get("HARVEST_DATABASE_URL", "").strip(),
            credentials=credentials,
            key_scopes=key_scopes,
            host=env.get("HARVEST_HOST", "").strip() or "127.0.0.1",
            port=_int(env, "HARVEST_PORT", 8080),
            workers=_int(env, "HARVEST_WORKERS", 4),
            rate_limit=_float(env, "HARVEST_RATE_LIMIT", 20.0),
            max_body_bytes=_int(env, "HARVEST_MAX_BODY_BYTES", 1024 * 1024),
            max_connections=_int(env, "HARVEST_MAX_CONNECTIONS", 2048),
            request_head_timeout=_float(env, "HARVEST_REQUEST_HEAD_TIMEOUT", 15.0),
            tls_cert=_path(env, "HARVEST_TLS_CERT"),
            tls_key=_path(env, "HARVEST_TLS_KEY"),
            tls_self_signed=_bool(env, "HARVEST_TLS_SELF_SIGNED", False),
            signature_max_skew=_int(env, "HARVEST_SIGNATURE_MAX_SKEW", 300),
            replay_protection=_bool(env, "HARVEST_REPLAY_PROTECTION", False),
            default_destination=env.get("HARVEST_DEFAULT_DESTINATION", "").strip(),
            allowed_buckets=_list(env, "HARVEST_ALLOWED_BUCKETS"),
            queue_max_attempts=_int(env, "HARVEST_QUEUE_MAX_ATTEMPTS", 5),
            visibility_timeout=_float(env, "HARVEST_VISIBILITY_TIMEOUT", 900.0),
            dead_letter_hold=_float(env, "HARVEST_DEAD_LETTER_HOLD", 3600.0),
            object_store=env.get("HARVEST_OBJECT_STORE", "").strip() or "local",
            queue_backend=env.get("HARVEST_QUEUE", "").strip() or "sql",
            chunk_max_bytes=_int(env, "HARVEST_CHUNK_MAX_BYTES", 512 * 1024 * 1024),
            download_concurrency=_int(env, "HARVEST_DOWNLOAD_CONCURRENCY", 16),
            download_adaptive=_bool(env, "HARVEST_DOWNLOAD_ADAPTIVE", True),
            fetch_timeout=_float(env, "HARVEST_FETCH_TIMEOUT", 10.0),
            fetch_attempts=_int(env, "HARVEST_FETCH_ATTEMPTS", 5),
            fetch_backoff=_float(env, "HARVEST_FETCH_BACKOFF", 0.2),
            job_deadline=_float(env, "HARVEST_JOB_DEADLINE", 6 * 3600.0),
            copy_keys=_bool(env, "HARVEST_COPY_KEYS", False),
            playlist_max_chars=_int(env, "HARVEST_PLAYLIST_MAX_BYTES", 64 * 1024 * 1024),
            playlist_max_lines=_int(env, "HARVEST_PLAYLIST_MAX_LINES", 2_000_000),
            max_variants=_int(env, "HARVEST_MAX_VARIANTS", 100),
            max_renditions=_int(env, "HARVEST_MAX_RENDITIONS", 200),
            max_plan_tasks=_int(env, "HARVEST_MAX_PLAN_TASKS", 150_000),
            allow_private_callbacks=_bool(env, "HARVEST_ALLOW_PRIVATE_CALLBACKS", False),
            allowed_private_hosts=_list(env, "HARVEST_ALLOWED_PRIVATE_HOSTS"),
            callback_deadline=_float(env, "HARVEST_CALLBACK_DEADLINE", 10.0),
            cos_multipart_threshold=_int(env, "HARVEST_COS_MULTIPART_THRESHOLD", 16 * 1024 * 1024),
            cos_endpoint_ip=env.get("HARVEST_COS_IP", "").strip(),
            cos_endpoint_port=_int(env, "HARVEST_COS_PORT", 0),
            cos_scheme=env.get("HARVEST_COS_SCHEME", "").strip() or "https",
            ckafka_datahub_id=env.get("HARVEST_CKAFKA_DATAHUB_ID", "").strip(),
            ckafka_finalize_datahub_id=env.get("HARVEST_CKAFKA_FINALIZE_DATAHUB_ID", "").strip(),
            ckafka_callback_datahub_id=env.get("HARVEST_CKAFKA_CALLBACK_DATAHUB_ID", "").strip(),
            tencent_api_endpoint=env.get("HARVEST_TENCENT_API_ENDPOINT", "").strip(),
            # SCF injects the execution role's temporary credentials under these names.
            cloud_secret_id=env.get("TENCENTCLOUD_SECRETID", "").strip(),
            cloud_secret_key=env.get("TENCENTCLOUD_SECRETKEY", "").strip(),
            cloud_token=env.get("TENCENTCLOUD_SESSIONTOKEN", "").strip(),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """ConfigError naming the first setting that is out of range or contradicts another."""
        self._check_timezone()
        for broken, message in self._rules():
            if broken:
                raise ConfigError(message)
        self._check_default_destination()
        for name, value, low, high in self._ranges():
            if value < low or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f">= {low}"
                note = f" ({_RANGE_NOTES[name]})" if name in _RANGE_NOTES else ""
                raise ConfigError(f"{name} must be {bounds}{note}, got {value}")
        for name, seconds in self._durations():
            if seconds <= 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {seconds}")

    def _ranges(self) -> list[tuple[str, float, float, float | None]]:
        """(setting, value, lowest, highest or None) for every count and size: a 0 or a negative
        would not mean "none" or "off" to the code that reads it (zero download slots hang a chunk)."""
        return [
            ("HARVEST_PORT", self.port, 0, 65535),  # 0: any free port (the tests' servers)
            ("HARVEST_WORKERS", self.workers, 1, None),
            ("HARVEST_MAX_CONNECTIONS", self.max_connections, 1, None),
            ("HARVEST_RATE_LIMIT", self.rate_limit, 0, None),
            ("HARVEST_QUEUE_MAX_ATTEMPTS", self.queue_max_attempts, 1, None),
            ("HARVEST_DEAD_LETTER_HOLD", self.dead_letter_hold, 0, None),
            ("HARVEST_COS_PORT", self.cos_endpoint_port, 0, 65535),  # 0: the scheme's own port
            ("HARVEST_MAX_BODY_BYTES", self.max_body_bytes, 1, None),
            ("HARVEST_SIGNATURE_MAX_SKEW", self.signature_max_skew, 1, None),
            ("HARVEST_CHUNK_MAX_BYTES", self.chunk_max_bytes, 1, None),
            ("HARVEST_DOWNLOAD_CONCURRENCY", self.download_concurrency, 1, None),
            ("HARVEST_FETCH_ATTEMPTS", self.fetch_attempts, 1, None),
            ("HARVEST_FETCH_BACKOFF", self.fetch_backoff, 0, None),
            ("HARVEST_COS_MULTIPART_THRESHOLD", self.cos_multipart_threshold, 1, None),
            ("HARVEST_PLAYLIST_MAX_BYTES", self.playlist_max_chars, 1, None),
            ("HARVEST_PLAYLIST_MAX_LINES", self.playlist_max_lines, 1, None),
            ("HARVEST_MAX_VARIANTS", self.max_variants, 1, None),
            ("HARVEST_MAX_RENDITIONS", self.max_renditions, 1, None),
            ("HARVEST_MAX_PLAN_TASKS", self.max_plan_tasks, 1, None),
        ]

    def _durations(self) -> list[tuple[str, float]]:
        return [
            ("HARVEST_REQUEST_HEAD_TIMEOUT", self.request_head_timeout),
            ("HARVEST_VISIBILITY_TIMEOUT", self.visibility_timeout),
            ("HARVEST_FETCH_TIMEOUT", self.fetch_timeout),
            ("HARVEST_JOB_DEADLINE", self.job_deadline),
            ("HARVEST_CALLBACK_DEADLINE", self.callback_deadline),
        ]

    def _check_timezone(self) -> None:
        try:
            self.zone  # noqa: B018  (raises for an unknown name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                "HARVEST_TIMEZONE must be an IANA time zone name like Asia/Shanghai or UTC,"
                f" got {self.timezone!r}"
            ) from None

    def _rules(self) -> list[tuple[bool, str]]:
        """(broken, what to say) for each rule on a choice or a pair of settings, in the order checked
        (plain ranges are in _ranges and _durations)."""
        return [
            (
                (self.tls_cert is None) != (self.tls_key is None),
                "HTTPS needs both HARVEST_TLS_CERT and HARVEST_TLS_KEY (--tls-cert, --tls-key)",
            ),
            (
                self.tls_self_signed and self.tls_cert is not None,
                "give a certificate (--tls-cert/--tls-key) or --tls-self-signed, not both",
            ),
            (self.object_store not in ("local", "cos"), "HARVEST_OBJECT_STORE must be 'local' or 'cos'"),
            (self.queue_backend not in ("sql", "ckafka"), "HARVEST_QUEUE must be 'sql' or 'ckafka'"),
            (self.cos_scheme not in ("http", "https"), "HARVEST_COS_SCHEME must be 'http' or 'https'"),
            (
                self.queue_backend == "ckafka" and self.region not in CKAFKA_HTTP_REGIONS,
                f"HARVEST_REGION {self.region!r}: CKafka's HTTP SendMessage (HARVEST_QUEUE=ckafka) is"
                f" offered only in {', '.join(sorted(CKAFKA_HTTP_REGIONS))}",
            ),
        ]

    def _check_default_destination(self) -> None:
        if not self.default_destination:
            return
        from harvest.domain.destination import parse_destination

        try:
            parse_destination(self.default_destination, self.region, self.allowed_buckets)
        except FieldError as exc:
            raise ConfigError(f"HARVEST_DEFAULT_DESTINATION is unusable: {exc.message}") from exc


# --- live-event notifications (the live_event_end function) --------------------------------------


def _env_seconds(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class LiveEventConfig:
    """The settings of live-event notifications (CSS/StreamLive callbacks -> harvest jobs)."""

    callback_key: str
    lead_seconds: int = 10  # harvest this much before the push started
    tail_seconds: int = 10  # ... and after it stopped
    default_duration: int = 3600  # session length assumed when nothing tells us where it started
    # CSS and StreamLive sign with t = now + 10 min: a t further ahead was not made by them (or a
    # captured signature is being stretched), so it is refused.
    sign_max_ahead: int = 900
    rate_limit: float = 5.0  # notifications/s per source address (burst: live_events.RATE_BURST_SECONDS)
    pipeline_window: int = 120  # StreamLive stops of one input this close together are one stop

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveEventConfig:
        """Read once, by the composition root, for the live_event_end function only (the only
        one given HARVEST_CALLBACK_KEY)."""
        env = os.environ if env is None else env
        key = env.get("HARVEST_CALLBACK_KEY", "").strip()
        if not key:
            # Without a key anyone could compute md5("" + t): refuse to start rather than accept forgeries.
            raise ConfigError("HARVEST_CALLBACK_KEY must be set to the CSS/StreamLive callback key")
        return cls(
            callback_key=key,
            lead_seconds=_env_seconds(env, "HARVEST_LIVE_LEAD_SECONDS", 10, 0),
            tail_seconds=_env_seconds(env, "HARVEST_LIVE_TAIL_SECONDS", 10, 0),
            default_duration=_env_seconds(env, "HARVEST_LIVE_DEFAULT_DURATION", 3600, 1),
            sign_max_ahead=_env_seconds(env, "HARVEST_LIVE_SIGN_MAX_AHEAD", 900, 1),
            rate_limit=float(_env_seconds(env, "HARVEST_LIVE_RATE_LIMIT", 5, 0)),
            pipeline_window=_env_seconds(env, "HARVEST_LIVE_PIPELINE_WINDOW", 120, 1),
        )
