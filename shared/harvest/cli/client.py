"""The CLI's API client: the unchanged Tencent SDK, pointed at a harvest endpoint.

`MdpClient` serves the five StreamPackage actions; our extension actions (job progress, cancel) go
through the SDK's `CommonClient`, so they are signed and answered exactly like the others.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models

from harvest.settings import DEFAULT_REGION

PROGRESS_ACTION = "DescribeStreamPackageHarvestJobProgress"
CANCEL_ACTION = "CancelStreamPackageHarvestJob"


@dataclass(frozen=True)
class ClientConfig:
    endpoint: str  # host:port, no scheme
    secret_id: str
    secret_key: str
    region: str
    protocol: str = "http"
    token: str = ""  # with a temporary key (`harvest keys issue`)
    # CA bundle for an https:// endpoint: the SDK trusts only certifi's bundle unless given one, and
    # ignores REQUESTS_CA_BUNDLE, so the CLI reads that here (HARVEST_CA_BUNDLE first).
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, endpoint: str | None = None) -> ClientConfig:
        env = os.environ if env is None else env
        raw = endpoint or env.get("HARVEST_ENDPOINT", "") or "127.0.0.1:8080"
        protocol = "https" if raw.startswith("https://") else "http"
        host = raw.split("://", 1)[-1].rstrip("/")
        return cls(
            endpoint=host,
            secret_id=env.get("HARVEST_SECRET_ID", ""),
            secret_key=env.get("HARVEST_SECRET_KEY", ""),
            region=env.get("HARVEST_REGION", "") or DEFAULT_REGION,
            protocol=protocol,
            token=env.get("HARVEST_TOKEN", ""),
            ca_bundle=env.get("HARVEST_CA_BUNDLE", "") or env.get("REQUESTS_CA_BUNDLE", "") or None,
        )


class HarvestClient:
    def __init__(self, config: ClientConfig, timeout: int = 30) -> None:
        cred = credential.Credential(config.secret_id, config.secret_key, config.token or None)
        http = HttpProfile(
            endpoint=config.endpoint,
            protocol=config.protocol,
            reqTimeout=timeout,
            certification=config.ca_bundle,
        )
        profile = ClientProfile(httpProfile=http)
        self._mdp = mdp_client.MdpClient(cred, config.region, profile)
        self._common = CommonClient("mdp", "2020-05-27", cred, config.region, profile)

    def create(self, params: Mapping[str, str]) -> dict[str, Any]:
        req = models.CreateStreamPackageHarvestJobRequest()
        req.from_json_string(_json(params))
        return _info(self._mdp.CreateStreamPackageHarvestJob(req).Info)

    def describe(self, job_id: str) -> dict[str, Any]:
        req = models.DescribeStreamPackageHarvestJobRequest()
        req.ID = job_id
        return _info(self._mdp.DescribeStreamPackageHarvestJob(req).Info)

    def list(
        self, channel: str | None, page: int, page_size: int
    ) -> tuple[builtins.list[dict[str, Any]], int]:
        req = models.DescribeStreamPackageHarvestJobsRequest()
        req.ChannelName = channel
        req.PageNum = page
        req.PageSize = page_size
        resp = self._mdp.DescribeStreamPackageHarvestJobs(req)
        return [_info(i) for i in resp.Infos or []], int(resp.TotalNum or 0)

    def delete(self, job_ids: builtins.list[str]) -> None:
        if len(job_ids) == 1:
            one = models.DeleteStreamPackageHarvestJobRequest()
            one.ID = job_ids[0]
            self._mdp.DeleteStreamPackageHarvestJob(one)
        else:
            many = models.DeleteStreamPackageHarvestJobsRequest()
            many.IDs = job_ids
            self._mdp.DeleteStreamPackageHarvestJobs(many)

    def cancel(self, job_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self._common.call_json(CANCEL_ACTION, {"ID": job_id})["Response"]["Info"]
        return info

    def progress(self, job_id: str) -> dict[str, Any]:
        response: dict[str, Any] = self._common.call_json(PROGRESS_ACTION, {"ID": job_id})["Response"]
        return response


def _json(params: Mapping[str, str]) -> str:
    import json

    return json.dumps({k: v for k, v in params.items() if v is not None})


def _info(model: Any) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(model.to_json_string())
    return data
