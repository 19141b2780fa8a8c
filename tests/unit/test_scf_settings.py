"""Start-up checks for the SCF functions: a missing or unusable setting is named, never defaulted."""

from __future__ import annotations

import pytest

from harvest.errors import ConfigError
from harvest.settings import SCF_REQUIRED_SETTINGS, Settings, check_scf_environment

WORKER_ENV = {
    "TENCENTCLOUD_RUNENV": "SCF",
    "TENCENTCLOUD_SECRETID": "AKIDrole",
    "TENCENTCLOUD_SECRETKEY": "role-key",
    "HARVEST_REGION": "ap-singapore",
    "HARVEST_DATABASE_URL": "postgresql://harvest@10.0.0.10/harvest",
    "HARVEST_QUEUE": "ckafka",
    "HARVEST_CKAFKA_DATAHUB_ID": "datahub-work",
    "HARVEST_CKAFKA_FINALIZE_DATAHUB_ID": "datahub-finalize",
    "HARVEST_CHANNELS": "/var/user/channels.yaml",
    "HARVEST_OBJECT_STORE": "cos",
}


def test_a_complete_worker_environment_passes() -> None:
    check_scf_environment("worker", WORKER_ENV)


@pytest.mark.parametrize("missing", [*SCF_REQUIRED_SETTINGS["worker"], "TENCENTCLOUD_SECRETID"])
def test_each_missing_setting_is_named(missing: str) -> None:
    env = {name: value for name, value in WORKER_ENV.items() if name != missing}
    with pytest.raises(ConfigError, match=missing):
        check_scf_environment("worker", env)


def test_missing_role_keys_point_at_the_role() -> None:
    env = {k: v for k, v in WORKER_ENV.items() if not k.startswith("TENCENTCLOUD_SECRET")}
    with pytest.raises(ConfigError, match="execution role"):
        check_scf_environment("worker", env)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HARVEST_DATABASE_URL", "sqlite:////tmp/harvest.db", "postgresql://"),
        ("HARVEST_QUEUE", "sql", "'ckafka'"),
        ("HARVEST_OBJECT_STORE", "local", "'cos'"),
    ],
)
def test_one_machine_defaults_are_refused_on_scf(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        check_scf_environment("worker", {**WORKER_ENV, name: value})


def test_an_unparseable_default_destination_is_refused_naming_the_setting() -> None:
    # The example the old serverless.yml gave, `cos://bucket-appid/prefix`, is not a COS URL.
    with pytest.raises(ConfigError, match="HARVEST_DEFAULT_DESTINATION") as caught:
        Settings.from_env({"HARVEST_DEFAULT_DESTINATION": "cos://vod-1250000000/harvests"})
    assert "must be a COS URL" in caught.value.message
    with pytest.raises(ConfigError, match=r"HARVEST_DEFAULT_DESTINATION.*region"):
        Settings.from_env(
            {"HARVEST_DEFAULT_DESTINATION": "https://vod-1250000000.cos.ap-guangzhou.myqcloud.com/x/"}
        )
    good = "https://vod-1250000000.cos.ap-singapore.myqcloud.com/harvests/"
    assert Settings.from_env({"HARVEST_DEFAULT_DESTINATION": good}).default_destination == good


def test_a_region_without_ckafka_http_access_is_named_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"HARVEST_REGION 'ap-hongkong'.*SendMessage"):
        Settings.from_env({"HARVEST_QUEUE": "ckafka", "HARVEST_REGION": "ap-hongkong"})
    local = Settings.from_env({"HARVEST_QUEUE": "sql", "HARVEST_REGION": "ap-hongkong"})
    assert local.region == "ap-hongkong"


def test_harvest_chunk_seconds_is_gone() -> None:
    # It was documented and set but read by nothing; chunks are sized by HARVEST_CHUNK_MAX_BYTES.
    assert not hasattr(Settings(), "chunk_seconds")
