"""Key scopes: the credential formats (old and new) and what a scope allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvest.domain.access import BucketScope, Caller, KeyScope, parse_scope
from harvest.domain.destination import CosLocation
from harvest.errors import ConfigError, UnauthorizedOperation
from harvest.settings import parse_keys


def test_todays_credential_format_gives_full_access_keys() -> None:
    pairs, scopes = parse_keys({"HARVEST_SECRET_ID": "AKID1", "HARVEST_SECRET_KEY": "k1",
                                "HARVEST_CREDENTIALS": "AKID2:k2,AKID3:k:3"})
    assert pairs == {"AKID1": "k1", "AKID2": "k2", "AKID3": "k:3"}
    assert scopes == {}


def test_an_entry_with_a_scope_and_a_file_entry() -> None:
    env = {"HARVEST_CREDENTIALS": "AKIDa:ka:actions=read|create;channels=news*;buckets=vod-1250000000/a/"}
    pairs, scopes = parse_keys(env)
    assert pairs == {"AKIDa": "ka"}
    assert scopes["AKIDa"] == KeyScope(
        actions=("read", "create"), channels=("news*",), buckets=(BucketScope("vod-1250000000", "a/"),)
    )


def test_the_file_form(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {secret_id: AKIDd, secret_key: kd, actions: [read]}\n"
                    "  - {secret_id: AKIDf, secret_key: kf}\n", encoding="utf-8")
    pairs, scopes = parse_keys({"HARVEST_CREDENTIALS_FILE": str(path)})
    assert pairs == {"AKIDd": "kd", "AKIDf": "kf"}
    assert scopes == {"AKIDd": KeyScope(actions=("read",))}


@pytest.mark.parametrize(
    "text", ["actions=reed", "colour=blue", "buckets=/x", "channels"]
)
def test_a_malformed_scope_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_scope(text)


def test_action_groups_go_by_verb() -> None:
    read_only = KeyScope(actions=("read",))
    assert read_only.allows_action("DescribeStreamPackageHarvestJobs")
    assert read_only.allows_action("DescribeStreamPackageChannels")  # an action added later
    assert not read_only.allows_action("CreateStreamPackageHarvestJob")
    assert KeyScope(actions=("write",)).allows_action("DeleteStreamPackageHarvestJobs")
    assert KeyScope(actions=("DeleteStreamPackageHarvestJob",)).allows_action("DeleteStreamPackageHarvestJob")


def test_a_bucket_prefix_scope_covers_only_its_part_of_the_bucket() -> None:
    caller = Caller("AKIDa", KeyScope(buckets=(BucketScope("vod-1250000000", "team-a/"),)))
    inside = CosLocation("vod-1250000000", "ap-singapore", "team-a/show/")
    outside = CosLocation("vod-1250000000", "ap-singapore", "team-ab/")
    caller.check_destination(inside)
    with pytest.raises(UnauthorizedOperation, match="AKIDa"):
        caller.check_destination(outside)
    assert caller.sees("any", inside)
    assert not caller.sees("any", None)
