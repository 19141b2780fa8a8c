"""The API function behind the local gateway, on a real SQLite store: what the real SDK talks to.

`running_api_stack(tmp_path, **settings)` builds it (registry with channel `news` / endpoint `hls`,
startover window 86400 s, and channel `sports` / `hls`; credentials AKIDtest / secret); the
`api_stack` fixture is the default one. Tests import the fixture from here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.signing import REGION, SECRET_ID, SECRET_KEY, signed_headers

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql import Database, SqlCredentialStore, SqlJobStore, SqlQueue
from harvest.domain.credentials import IssuedKey, mint
from harvest.domain.registry import load_registry
from harvest.handlers.api import API_VERSION, ApiDeps, make_handler
from harvest.local.gateway import GatewayServer
from harvest.settings import Settings
from harvest.usecases.api_jobs import Relay

DESTINATION = "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod/"
STARTOVER_WINDOW = 86400

REGISTRY_YAML = """\
channels:
  - name: news
    id: ch-news-0001
    endpoints:
      - name: hls
        url: http://127.0.0.1:9/news/hls/main.m3u8
        startover_window: {window}
  - name: sports
    endpoints:
      - name: hls
        url: http://127.0.0.1:9/sports/hls/main.m3u8
        startover_window: {window}
"""


def write_registry(directory: Path, window: int = STARTOVER_WINDOW) -> Path:
    path = directory / "channels.yaml"
    path.write_text(REGISTRY_YAML.format(window=window), encoding="utf-8")
    return path


def job_params(job_id: str, now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """Create parameters that pass every rule: a 20-minute window that ended 10 minutes ago."""
    now = time.time() if now is None else now
    params: dict[str, Any] = {
        "ID": job_id,
        "ChannelName": "news",
        "EndpointName": "hls",
        "TimeFormat": "Epoch seconds",
        "StartTime": str(int(now) - 1800),
        "EndTime": str(int(now) - 600),
        "Destination": DESTINATION,
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


@dataclass
class ApiStack:
    settings: Settings
    db: Database
    store: SqlJobStore
    queue: SqlQueue
    gateway: GatewayServer

    @property
    def endpoint(self) -> str:
        return self.gateway.endpoint

    def profile(
        self, method: str = "POST", sign_method: str | None = None, language: str = "en-US"
    ) -> ClientProfile:
        return ClientProfile(
            signMethod=sign_method,
            httpProfile=HttpProfile(endpoint=self.endpoint, protocol="http", reqMethod=method),
            language=language,
        )

    def issue_key(
        self, ttl: float = 3600.0, scope: tuple[str, ...] = (), now: float | None = None
    ) -> IssuedKey:
        """A temporary key stored as `harvest keys issue` stores it."""
        issued = mint(ttl, scope, time.time() if now is None else now)
        SqlCredentialStore(self.db).add(issued.key)
        return issued

    def client(
        self,
        method: str = "POST",
        secret_id: str = SECRET_ID,
        secret_key: str = SECRET_KEY,
        region: str = REGION,
        token: str | None = None,
    ) -> mdp_client.MdpClient:
        cred = credential.Credential(secret_id, secret_key, token)
        return mdp_client.MdpClient(cred, region, self.profile(method))

    def common(
        self, version: str = API_VERSION, service: str = "mdp", method: str = "POST", region: str = REGION
    ) -> CommonClient:
        """The SDK's generic client: sends any parameters, typed as given."""
        cred = credential.Credential(SECRET_ID, SECRET_KEY)
        return CommonClient(service, version, cred, region, self.profile(method))

    def create(self, params: Mapping[str, Any], method: str = "POST") -> models.HarvestJobResp:
        request = models.CreateStreamPackageHarvestJobRequest()
        request.from_json_string(json.dumps(params))
        return self.client(method).CreateStreamPackageHarvestJob(request).Info

    def raw_post(
        self,
        action: str,
        body: bytes,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
        **sign_options: Any,
    ) -> requests.Response:
        """A request signed by tests.support.signing, for what the SDK will not send."""
        signed = signed_headers(self.endpoint, action, body, timestamp=timestamp, **sign_options)
        signed.update(headers or {})
        return requests.post(f"http://{self.endpoint}/", data=body, headers=signed, timeout=10)


@contextmanager
def running_api_stack(
    tmp_path: Path,
    *,
    relay_factory: Callable[[SqlJobStore, SqlQueue], Relay] | None = None,
    deps_overrides: Mapping[str, Any] | None = None,
    **settings_overrides: Any,
) -> Iterator[ApiStack]:
    """Start the stack; settings default to rate limiting off (tests fire fast) unless overridden."""
    settings = Settings(
        region=REGION,
        data_dir=tmp_path,
        channels_file=write_registry(tmp_path),
        database_url=f"sqlite:///{tmp_path / 'harvest.db'}",
        credentials={SECRET_ID: SECRET_KEY},
        rate_limit=0.0,
    )
    settings = replace(settings, **settings_overrides)
    db = Database.connect(settings.effective_database_url)
    store = SqlJobStore(db)
    queue = SqlQueue(db, max_attempts=settings.queue_max_attempts)
    relay = relay_factory(store, queue) if relay_factory else OutboxRelay(store, queue)
    deps = ApiDeps(
        settings=settings,
        registry=load_registry(settings.channels_file),
        store=store,
        relay=relay,
        credentials=SqlCredentialStore(db),
    )
    deps = replace(deps, **(deps_overrides or {}))
    gateway = GatewayServer(make_handler(deps)).start()
    try:
        yield ApiStack(settings=settings, db=db, store=store, queue=queue, gateway=gateway)
    finally:
        gateway.stop()
        db.close()


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK and requests honour *_PROXY variables: loopback traffic must never go through one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def api_stack(tmp_path: Path, no_proxy: None) -> Iterator[ApiStack]:
    with running_api_stack(tmp_path) as stack:
        yield stack
