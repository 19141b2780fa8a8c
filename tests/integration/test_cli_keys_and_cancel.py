"""`harvest keys issue` and `harvest cancel`, run as a person would, against the real API function."""

from __future__ import annotations

import json

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.api_stack import REGION, SECRET_ID, SECRET_KEY, ApiStack, job_params

from harvest.cli.jobs import EXIT_OK, EXIT_USAGE
from harvest.cli.main import main as cli_main

pytest_plugins = ("tests.support.api_stack",)


@pytest.fixture
def cli_env(api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVEST_DATABASE_URL", api_stack.settings.effective_database_url)
    monkeypatch.setenv("HARVEST_DATA_DIR", str(api_stack.settings.data_dir))
    monkeypatch.setenv("HARVEST_ENDPOINT", api_stack.endpoint)
    monkeypatch.setenv("HARVEST_REGION", REGION)
    monkeypatch.setenv("HARVEST_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("HARVEST_SECRET_KEY", SECRET_KEY)


def test_an_issued_key_works_with_its_token_within_its_scope(
    api_stack: ApiStack, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a read-only key is issued for an hour
    assert cli_main(["keys", "issue", "--ttl", "1h", "--scope", "Describe*"]) == EXIT_OK
    issued = json.loads(capsys.readouterr().out)
    # THEN it is a triple the unchanged SDK signs with, good for reading
    cred = credential.Credential(issued["SecretId"], issued["SecretKey"], issued["Token"])
    mdp = mdp_client.MdpClient(cred, REGION, api_stack.profile())
    assert (
        mdp.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest()).TotalNum == 0
    )
    assert issued["Scope"] == ["Describe*"]
    # AND refused for anything else
    create = models.CreateStreamPackageHarvestJobRequest()
    create.from_json_string(json.dumps(job_params("not-allowed")))
    with pytest.raises(TencentCloudSDKException) as caught:
        mdp.CreateStreamPackageHarvestJob(create)
    assert caught.value.get_code() == "UnauthorizedOperation"
    # AND the database holds only a hash of the token, never the token itself
    with api_stack.db.transaction(write=False) as tx:
        rows = tx.execute("SELECT token_hash FROM temporary_keys WHERE secret_id = ?", (issued["SecretId"],))
    assert len(rows) == 1
    assert issued["Token"] not in rows[0]["token_hash"]


def test_keys_issue_refuses_a_lifetime_out_of_bounds(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["keys", "issue", "--ttl", "30d"]) == EXIT_USAGE
    assert "lives between" in capsys.readouterr().err


def test_harvest_cancel_stops_a_running_job(
    api_stack: ApiStack, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Running job
    api_stack.create(job_params("to-cancel"))
    # WHEN it is cancelled from the command line
    assert cli_main(["cancel", "to-cancel"]) == EXIT_OK
    # THEN it is Failed, saying who cancelled it
    assert f"job to-cancel Failed: cancelled by {SECRET_ID} at " in capsys.readouterr().out
    assert api_stack.store.get("to-cancel").err_message.startswith(f"cancelled by {SECRET_ID} at ")
    # AND a second cancel says why it cannot
    assert cli_main(["cancel", "to-cancel"]) == 1
    assert "InvalidParameter.State" in capsys.readouterr().err


def test_a_revoked_key_is_refused_at_once(
    api_stack: ApiStack, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an issued key that works
    assert cli_main(["keys", "issue"]) == EXIT_OK
    issued = json.loads(capsys.readouterr().out)
    cred = credential.Credential(issued["SecretId"], issued["SecretKey"], issued["Token"])
    mdp = mdp_client.MdpClient(cred, REGION, api_stack.profile())
    assert (
        mdp.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest()).TotalNum == 0
    )
    # WHEN it is revoked THEN the next request is refused, and revoking again says there is none
    assert cli_main(["keys", "revoke", issued["SecretId"]]) == EXIT_OK
    with pytest.raises(TencentCloudSDKException) as caught:
        mdp.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest())
    assert caught.value.get_code() == "AuthFailure.SecretIdNotFound"
    assert cli_main(["keys", "revoke", issued["SecretId"]]) == 1
