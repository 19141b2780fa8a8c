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

import yaml

from harvest.domain.access import ALL, KeyScope, parse_scope, scope_from_mapping
from harvest.domain.destination import parse_destination
from harvest.errors import ConfigError, HarvestError

DEFAULT_REGION = "ap-singapore"


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
    signature_max_skew: int = 300
    replay_protection: bool = False  # refuse a signature seen before within the skew window
    # Destination defaults and limits
    default_destination: str = ""  # used when a Create omits Destination
    allowed_buckets: tuple[str, ...] = ()  # empty: any bucket in the region
    # Queue
    queue_max_attempts: int = 5
    visibility_timeout: float = 900.0
    # Harvesting
    object_store: str = "local"  # local | cos
    queue_backend: str = "sql"  # sql | ckafka
    chunk_seconds: float = 300.0  # target worker time per chunk, well inside SCF's 900 s
    chunk_max_bytes: int = 512 * 1024 * 1024
    download_concurrency: int = 16  # the benchmark's sweep peaks at 16 with and without origin latency
    fetch_timeout: float = 10.0
    fetch_attempts: int = 5
    fetch_backoff: float = 0.2
    job_deadline: float = 6 * 3600.0  # sweeper fails Running jobs older than this
    copy_keys: bool = False  # keys stay on the key server unless the operator opts in
    allow_private_callbacks: bool = False
    cos_multipart_threshold: int = 16 * 1024 * 1024
    # cloud (issue: SCF deployment)
    cos_endpoint_ip: str = ""  # for tests: send COS requests to IP:PORT with the proper Host header
    cos_endpoint_port: int = 0
    cos_scheme: str = "https"
    ckafka_datahub_id: str = ""
    ckafka_finalize_datahub_id: str = ""
    tencent_api_endpoint: str = ""  # override for the ckafka API host (tests)
    cloud_secret_id: str = ""
    cloud_secret_key: str = ""
    cloud_token: str = ""

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
            signature_max_skew=_int(env, "HARVEST_SIGNATURE_MAX_SKEW", 300),
            replay_protection=_bool(env, "HARVEST_REPLAY_PROTECTION", False),
            default_destination=env.get("HARVEST_DEFAULT_DESTINATION", "").strip(),
            allowed_buckets=_list(env, "HARVEST_ALLOWED_BUCKETS"),
            queue_max_attempts=_int(env, "HARVEST_QUEUE_MAX_ATTEMPTS", 5),
            visibility_timeout=_float(env, "HARVEST_VISIBILITY_TIMEOUT", 900.0),
            object_store=env.get("HARVEST_OBJECT_STORE", "").strip() or "local",
            queue_backend=env.get("HARVEST_QUEUE", "").strip() or "sql",
            chunk_seconds=_float(env, "HARVEST_CHUNK_SECONDS", 300.0),
            chunk_max_bytes=_int(env, "HARVEST_CHUNK_MAX_BYTES", 512 * 1024 * 1024),
            download_concurrency=_int(env, "HARVEST_DOWNLOAD_CONCURRENCY", 16),
            fetch_timeout=_float(env, "HARVEST_FETCH_TIMEOUT", 10.0),
            fetch_attempts=_int(env, "HARVEST_FETCH_ATTEMPTS", 5),
            fetch_backoff=_float(env, "HARVEST_FETCH_BACKOFF", 0.2),
            job_deadline=_float(env, "HARVEST_JOB_DEADLINE", 6 * 3600.0),
            copy_keys=_bool(env, "HARVEST_COPY_KEYS", False),
            allow_private_callbacks=_bool(env, "HARVEST_ALLOW_PRIVATE_CALLBACKS", False),
            cos_multipart_threshold=_int(env, "HARVEST_COS_MULTIPART_THRESHOLD", 16 * 1024 * 1024),
            cos_endpoint_ip=env.get("HARVEST_COS_IP", "").strip(),
            cos_endpoint_port=_int(env, "HARVEST_COS_PORT", 0),
            cos_scheme=env.get("HARVEST_COS_SCHEME", "").strip() or "https",
            ckafka_datahub_id=env.get("HARVEST_CKAFKA_DATAHUB_ID", "").strip(),
            ckafka_finalize_datahub_id=env.get("HARVEST_CKAFKA_FINALIZE_DATAHUB_ID", "").strip(),
            tencent_api_endpoint=env.get("HARVEST_TENCENT_API_ENDPOINT", "").strip(),
            # SCF injects the execution role's temporary credentials under these names.
            cloud_secret_id=env.get("TENCENTCLOUD_SECRETID", "").strip(),
            cloud_secret_key=env.get("TENCENTCLOUD_SECRETKEY", "").strip(),
            cloud_token=env.get("TENCENTCLOUD_SESSIONTOKEN", "").strip(),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.rate_limit < 0:
            raise ConfigError("HARVEST_RATE_LIMIT must be >= 0 (0 disables rate limiting)")
        if self.workers < 1:
            raise ConfigError("HARVEST_WORKERS must be >= 1")
        if self.max_connections < 1:
            raise ConfigError("HARVEST_MAX_CONNECTIONS must be >= 1")
        if self.request_head_timeout <= 0:
            raise ConfigError("HARVEST_REQUEST_HEAD_TIMEOUT must be > 0 seconds")
        if self.object_store not in ("local", "cos"):
            raise ConfigError("HARVEST_OBJECT_STORE must be 'local' or 'cos'")
        if self.queue_backend not in ("sql", "ckafka"):
            raise ConfigError("HARVEST_QUEUE must be 'sql' or 'ckafka'")
        if self.queue_max_attempts < 1:
            raise ConfigError("HARVEST_QUEUE_MAX_ATTEMPTS must be >= 1")
