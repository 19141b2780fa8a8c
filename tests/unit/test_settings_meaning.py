"""Every setting means what it says: read by the code, documented in the README, and a value the
code could not use refused at start-up with the setting's name (issue 13, "Settings that mean what
they say").

The names are read off settings.py itself, so a setting added there without a README line or a
range check fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harvest.errors import ConfigError
from harvest.settings import LiveEventConfig, Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (ROOT / "shared" / "harvest" / "settings.py").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")

# How settings.py reads each name: `_int(env, "HARVEST_X", ...)`, `env.get("HARVEST_X", ...)`.
READ = re.compile(r'(?:(_int|_float|_bool|_env_seconds|_path|_list)\(env, |env\.get\()"(HARVEST_[A-Z0-9_]+)"')
READS = {name: reader or "text" for reader, name in READ.findall(SETTINGS_SOURCE)}
NUMBERS = sorted(name for name, reader in READS.items() if reader in ("_int", "_float", "_env_seconds"))
SWITCHES = sorted(name for name, reader in READS.items() if reader == "_bool")
LIVE_EVENT = {name for name in READS if name.startswith("HARVEST_LIVE_")}

# A value below what each number may be (its lowest allowed value - 1, or 0 for durations).
BELOW_RANGE = {
    "HARVEST_PORT": "-1",
    "HARVEST_COS_PORT": "65536",
    "HARVEST_RATE_LIMIT": "-1",
    "HARVEST_DEAD_LETTER_HOLD": "-1",
    "HARVEST_FETCH_BACKOFF": "-0.5",
    "HARVEST_LIVE_LEAD_SECONDS": "-1",
    "HARVEST_LIVE_TAIL_SECONDS": "-1",
    "HARVEST_LIVE_RATE_LIMIT": "-1",
}


def _live(env: dict[str, str]) -> LiveEventConfig:
    return LiveEventConfig.from_env({"HARVEST_CALLBACK_KEY": "k", **env})


def _load(name: str, value: str) -> object:
    env = {name: value}
    return _live(env) if name in LIVE_EVENT else Settings.from_env(env)


def test_the_reader_finds_the_settings() -> None:
    # The regular expression above is what every other test here stands on.
    assert len(READS) >= 50
    assert "HARVEST_DOWNLOAD_CONCURRENCY" in NUMBERS
    assert "HARVEST_COPY_KEYS" in SWITCHES
    assert "HARVEST_LIVE_TAIL_SECONDS" in LIVE_EVENT


@pytest.mark.parametrize("name", sorted(READS))
def test_every_setting_is_documented_in_the_readme(name: str) -> None:
    assert re.search(rf"\b{name}\b", README), f"{name} is read but the README never names it"


@pytest.mark.parametrize("name", NUMBERS)
def test_a_number_that_is_not_one_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        _load(name, "twelve")


@pytest.mark.parametrize("name", NUMBERS)
def test_a_number_out_of_its_range_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        _load(name, BELOW_RANGE.get(name, "0"))


@pytest.mark.parametrize("name", SWITCHES)
def test_a_switch_that_is_neither_true_nor_false_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        _load(name, "maybe")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HARVEST_OBJECT_STORE", "s3"),
        ("HARVEST_QUEUE", "kafka"),
        ("HARVEST_COS_SCHEME", "ftp"),
        ("HARVEST_TIMEZONE", "Mars/Olympus"),
        ("HARVEST_DEFAULT_DESTINATION", "not a url"),
    ],
)
def test_a_choice_outside_its_set_is_refused_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_smallest_allowed_values_are_accepted() -> None:
    # The ranges are not stricter than what the code can use: each bound itself is taken.
    settings = Settings.from_env(
        {
            "HARVEST_PORT": "0",
            "HARVEST_COS_PORT": "0",
            "HARVEST_RATE_LIMIT": "0",
            "HARVEST_DEAD_LETTER_HOLD": "0",
            "HARVEST_FETCH_BACKOFF": "0",
            "HARVEST_DOWNLOAD_CONCURRENCY": "1",
            "HARVEST_FETCH_ATTEMPTS": "1",
            "HARVEST_FETCH_TIMEOUT": "0.5",
        }
    )
    assert settings.port == 0
    assert settings.download_concurrency == 1
    assert settings.fetch_attempts == 1
    assert settings.fetch_timeout == 0.5


def test_each_readme_setting_is_read_by_the_code() -> None:
    # The other way round: a documented setting nothing reads would mislead (HARVEST_CHUNK_SECONDS was one).
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "shared" / "harvest").rglob("*.py"))
    documented = set(re.findall(r"`(HARVEST_[A-Z0-9_]+)`", README))
    unread = sorted(name for name in documented if f'"{name}"' not in code)
    assert unread == []
