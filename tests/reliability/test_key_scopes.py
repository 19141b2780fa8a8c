"""Keys with scopes, through the real Tencent SDK: what each key may call, create, see and delete.

The keys come from the real configuration path (Settings.from_env: HARVEST_CREDENTIALS entries with
a scope, and HARVEST_CREDENTIALS_FILE), and every call is a signed SDK call over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.reliability.table import Recorder
from tests.support.api_stack import (
    DESTINATION,
    SECRET_ID,
    SECRET_KEY,
    ApiStack,
    job_params,
    running_api_stack,
)

from harvest.settings import Settings

BUCKET_URL = "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/"
KEYS = {
    "AKIDteamA": "team-a-secret-key",
    "AKIDteamB": "team-b-secret-key",
    "AKIDdash": "dashboard-secret-key",
}
CREDENTIALS = (
    "AKIDteamA:team-a-secret-key:channels=news;buckets=harvest-1250000000/team-a/,"
    "AKIDteamB:team-b-secret-key:channels=news|sports;buckets=harvest-1250000000/team-b/"
)
CREDENTIALS_FILE = """\
keys:
  - secret_id: AKIDdash
    secret_key: dashboard-secret-key
    actions: [read]
"""


@pytest.fixture
def scoped_stack(tmp_path: Path, clean_proxy_env: None) -> Iterator[ApiStack]:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(CREDENTIALS_FILE, encoding="utf-8")
    env = {
        "HARVEST_SECRET_ID": SECRET_ID,
        "HARVEST_SECRET_KEY": SECRET_KEY,
        "HARVEST_CREDENTIALS": CREDENTIALS,
        "HARVEST_CREDENTIALS_FILE": str(keys_file),
    }
    configured = Settings.from_env(env)
    with running_api_stack(
        tmp_path, credentials=configured.credentials, key_scopes=configured.key_scopes
    ) as stack:
        yield stack


def client_for(stack: ApiStack, secret_id: str) -> mdp_client.MdpClient:
    return stack.client(secret_id=secret_id, secret_key=KEYS.get(secret_id, SECRET_KEY))


def sdk_error(call: Callable[..., Any], request: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as caught:
        call(request)
    return caught.value


def create_request(params: dict[str, Any]) -> models.CreateStreamPackageHarvestJobRequest:
    request = models.CreateStreamPackageHarvestJobRequest()
    request.from_json_string(json.dumps(params))
    return request


def describe_request(job_id: str) -> models.DescribeStreamPackageHarvestJobRequest:
    request = models.DescribeStreamPackageHarvestJobRequest()
    request.ID = job_id
    return request


def delete_request(job_id: str) -> models.DeleteStreamPackageHarvestJobRequest:
    request = models.DeleteStreamPackageHarvestJobRequest()
    request.ID = job_id
    return request


def listed(client: mdp_client.MdpClient) -> list[str]:
    answer = client.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest())
    return sorted(info.ID for info in answer.Infos)


def test_a_key_sees_deletes_and_overwrites_only_what_its_scope_allows(
    scoped_stack: ApiStack, reliability_record: Recorder
) -> None:
    team_a, team_b = client_for(scoped_stack, "AKIDteamA"), client_for(scoped_stack, "AKIDteamB")
    dashboard, admin = client_for(scoped_stack, "AKIDdash"), client_for(scoped_stack, SECRET_ID)
    # GIVEN a job team A created in its part of the bucket
    a_job = job_params("a-1", Destination=BUCKET_URL + "team-a/", Manifest="final/index.m3u8")
    assert team_a.CreateStreamPackageHarvestJob(create_request(a_job)).Info.Status == "Running"
    b_job = job_params("b-1", Destination=BUCKET_URL + "team-b/", ChannelName="sports")
    team_b.CreateStreamPackageHarvestJob(create_request(b_job))

    # WHEN team B aims a job at team A's VOD (same Destination and Manifest), or reads or deletes it
    overwrite = sdk_error(team_b.CreateStreamPackageHarvestJob, create_request({**a_job, "ID": "b-steal"}))
    describe = sdk_error(team_b.DescribeStreamPackageHarvestJob, describe_request("a-1"))
    delete = sdk_error(team_b.DeleteStreamPackageHarvestJob, delete_request("a-1"))
    # THEN each is UnauthorizedOperation naming the key and its scope, never its secret
    for refused in (overwrite, describe, delete):
        assert refused.code == "UnauthorizedOperation"
        assert "AKIDteamB" in refused.message
        assert "buckets=harvest-1250000000/team-b/" in refused.message
        assert KEYS["AKIDteamB"] not in refused.message
    # AND team B's list holds only its own job, team A's only its own
    assert listed(team_b) == ["b-1"]
    assert listed(team_a) == ["a-1"]
    # AND team A may not create in a channel outside its scope
    sports = sdk_error(
        team_a.CreateStreamPackageHarvestJob,
        create_request(job_params("a-2", ChannelName="sports", Destination=BUCKET_URL + "team-a/")),
    )
    assert sports.code == "UnauthorizedOperation"
    assert "channel 'sports'" in sports.message

    # WHEN the read-only dashboard key reads, creates and deletes
    seen = listed(dashboard)
    described = dashboard.DescribeStreamPackageHarvestJob(describe_request("b-1")).Info.ID
    dash_create = sdk_error(
        dashboard.CreateStreamPackageHarvestJob, create_request(job_params("d-1", Destination=BUCKET_URL))
    )
    dash_delete = sdk_error(dashboard.DeleteStreamPackageHarvestJob, delete_request("a-1"))
    # THEN it sees every job and may change none
    assert seen == ["a-1", "b-1"]
    assert described == "b-1"
    assert dash_create.code == dash_delete.code == "UnauthorizedOperation"
    assert "actions=read" in dash_create.message
    assert KEYS["AKIDdash"] not in dash_create.message

    # AND a key without a scope (today's format) still sees and may do everything
    assert listed(admin) == ["a-1", "b-1"]
    own_delete = sdk_error(team_a.DeleteStreamPackageHarvestJob, delete_request("a-1"))
    assert own_delete.code == "InvalidParameter.State"  # in scope; refused only as Running
    assert scoped_stack.store.get("a-1").destination == BUCKET_URL + "team-a/"  # untouched

    reliability_record(
        "Keys with scopes",
        "team A (channels=news; buckets=harvest-1250000000/team-a/), team B (team-b/), a read-only"
        " dashboard key (HARVEST_CREDENTIALS_FILE), an unscoped key; SDK calls across scopes",
        f"B overwriting A's VOD: {overwrite.code} ({overwrite.message!r}); B Describe/Delete of A's job:"
        f" {describe.code}/{delete.code}; lists: A {listed(team_a)}, B {listed(team_b)}, dashboard {seen};"
        f" A in channel sports: {sports.code};"
        f" dashboard Create/Delete: {dash_create.code}/{dash_delete.code};"
        f" no secret in any message; unscoped key unchanged",
    )


def test_with_no_allow_list_only_the_default_destination_bucket_is_writable(
    tmp_path: Path, clean_proxy_env: None, reliability_record: Recorder
) -> None:
    # GIVEN a service with a default destination and no HARVEST_ALLOWED_BUCKETS
    with running_api_stack(tmp_path, default_destination=DESTINATION) as stack:
        client = stack.client()
        # WHEN a Create names another bucket of the same region
        other = job_params("x-1", Destination="https://other-1250000000.cos.ap-singapore.myqcloud.com/vod/")
        refused = sdk_error(client.CreateStreamPackageHarvestJob, create_request(other))
        # THEN it is refused, and the default bucket is still accepted
        assert refused.code == "InvalidParameterValue"
        assert client.CreateStreamPackageHarvestJob(create_request(job_params("x-2"))).Info.ID == "x-2"
    # AND HARVEST_ALLOWED_BUCKETS=* opens every bucket of the region again
    opened = tmp_path / "opened"
    opened.mkdir()
    with running_api_stack(opened, default_destination=DESTINATION, allowed_buckets=("*",)) as stack:
        assert stack.client().CreateStreamPackageHarvestJob(create_request(other)).Info.ID == "x-1"
    reliability_record(
        "Destination with no allow-list",
        "HARVEST_DEFAULT_DESTINATION in harvest-1250000000, HARVEST_ALLOWED_BUCKETS unset; a Create"
        " to other-1250000000 (same region)",
        f"{refused.code} ({refused.message!r}); the default bucket: Created;"
        " with HARVEST_ALLOWED_BUCKETS=*: Created",
    )


def test_a_channel_scoped_key_sees_only_its_channels(scoped_stack: ApiStack) -> None:
    # GIVEN team A's key, scoped to channel news, and the unscoped key
    team_a, admin = client_for(scoped_stack, "AKIDteamA"), client_for(scoped_stack, SECRET_ID)
    # WHEN each lists the channels
    listing = models.DescribeStreamPackageChannelsRequest()
    mine = [info.Name for info in team_a.DescribeStreamPackageChannels(listing).Infos]
    every = [info.Name for info in admin.DescribeStreamPackageChannels(listing).Infos]
    # THEN team A sees news only, the unscoped key both
    assert mine == ["news"]
    assert sorted(every) == ["news", "sports"]
    # AND asking for the sports channel by its Id is refused, naming the key's scope
    sports_id = next(i.Id for i in admin.DescribeStreamPackageChannels(listing).Infos if i.Name == "sports")
    one = models.DescribeStreamPackageChannelRequest()
    one.Id = sports_id
    refused = sdk_error(team_a.DescribeStreamPackageChannel, one)
    assert refused.code == "UnauthorizedOperation"
    assert "channel 'sports'" in refused.message
