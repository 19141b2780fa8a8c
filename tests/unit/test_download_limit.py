"""The download pool's adaptive limit, driven through simulated origins (no threads, no clock).

Each world says how many bytes per second the pool gets with a given number of downloads at once;
the simulation ends one download after another at that rate, as a saturated pool would.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from harvest.composition import build_harvest_deps
from harvest.domain.registry import Registry
from harvest.settings import Settings
from harvest.usecases import download_limit
from harvest.usecases.download_limit import DownloadLimit

MB = 1_000_000
SEGMENT = MB

# MB/s by downloads at once, as the benchmark's sweep measured them on 2 cores (bench/README.md)
NEAR_ORIGIN: dict[int, float] = {2: 300, 4: 290, 8: 230, 16: 215}  # 0 ms: more threads only cost CPU
FAR_ORIGIN: dict[int, float] = {2: 75, 4: 138, 8: 199, 16: 280}  # 20 ms: every doubling pays


def run(
    limit: DownloadLimit,
    world: Callable[[int, float], float],
    seconds: float,
    start: float = 0.0,
    noise: random.Random | None = None,
) -> tuple[float, defaultdict[int, float]]:
    """Downloads end at the world's rate for `seconds`; returns the end time and seconds per limit."""
    now, time_at = start, defaultdict[int, float](float)
    speeds: dict[int, float] = {}
    while now < start + seconds:
        rate = world(limit.limit, now) * MB
        step = SEGMENT / rate
        if noise is not None:
            # the machine's speed moves by a quarter either way from one tenth of a second to the
            # next (as this project's 2-core machine does), not download by download
            step *= speeds.setdefault(int(now * 10), noise.uniform(0.75, 1.25))
        now += step
        time_at[limit.limit] += step
        limit.ended(now, SEGMENT)
    return now, time_at


def table(rates: dict[int, float]) -> Callable[[int, float], float]:
    return lambda level, _now: rates[level]


def test_it_starts_with_every_download_so_a_far_origin_loses_nothing_while_it_learns() -> None:
    assert DownloadLimit(16).limit == 16
    assert DownloadLimit(12).limit == 12


def test_a_fixed_limit_never_moves() -> None:
    limit = DownloadLimit(16, adaptive=False)
    run(limit, table(NEAR_ORIGIN), 30.0)
    assert limit.limit == 16


def test_near_origin_it_comes_down_to_the_few_downloads_that_are_as_fast() -> None:
    limit = DownloadLimit(16)
    _, time_at = run(limit, table(NEAR_ORIGIN), 30.0)
    assert limit.limit in (2, 4)
    # and most of the time was spent there, not at 16
    assert time_at[2] + time_at[4] > 0.8 * 30.0


def test_far_origin_it_keeps_every_download() -> None:
    limit = DownloadLimit(16)
    _, time_at = run(limit, table(FAR_ORIGIN), 30.0)
    assert limit.limit == 16
    # the probes below cost a little: at most a tenth of the time spent at fewer
    assert time_at[16] > 0.9 * 30.0


def test_when_the_origin_moves_away_the_limit_climbs_back_within_seconds() -> None:
    limit = DownloadLimit(16)
    end, _ = run(limit, table(NEAR_ORIGIN), 20.0)
    assert limit.limit <= 4
    _, time_at = run(limit, table(FAR_ORIGIN), 10.0, start=end)
    assert limit.limit == 16
    assert time_at[16] > 0.6 * 10.0


@pytest.mark.parametrize("seed", range(8))
def test_a_noisy_far_origin_is_not_talked_down(seed: int) -> None:
    # GIVEN a machine whose speed moves by a quarter between epochs, and 16 at once 40 % faster than 8
    limit = DownloadLimit(16)
    _, time_at = run(limit, table(FAR_ORIGIN), 60.0, noise=random.Random(seed))
    # THEN it stays at 16 most of the time and never goes below 8
    assert time_at[16] > 0.85 * 60.0
    assert time_at[2] == time_at[4] == 0


def test_it_never_goes_below_two() -> None:
    limit = DownloadLimit(16)
    _, time_at = run(limit, lambda level, _now: 100.0, 60.0)  # an origin as fast with any number
    assert min(time_at) == 2
    assert time_at[2] > 0.8 * 60.0
    assert DownloadLimit(1).limit == 1
    assert not DownloadLimit(2).adaptive  # nothing to choose between


def test_an_epoch_in_which_the_pool_ran_out_of_work_does_not_count() -> None:
    limit = DownloadLimit(16)
    now = 0.0
    for _ in range(5000):
        now += SEGMENT / (NEAR_ORIGIN[limit.limit] * MB)
        limit.ended(now, SEGMENT)
        limit.ran_dry()  # every download was the last one there was: nothing says the limit is wrong
    assert limit.limit == 16


def test_downloads_that_moved_nothing_do_not_count() -> None:
    # objects an earlier delivery stored are skipped in no time; they say nothing about the origin
    limit = DownloadLimit(16)
    now = 0.0
    for _ in range(5000):
        now += 0.001
        limit.ended(now, 0)
    assert limit.limit == 16


def test_epochs_are_long_enough_to_see_past_one_round_of_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an origin where fewer are as fast, and downloads ending far apart
    limit = DownloadLimit(16)
    now = 0.0
    for _ in range(download_limit.HOLD_EPOCHS * 2 * 16):  # enough downloads, but within 0.1 s each epoch?
        now += 0.0001
        limit.ended(now, SEGMENT)
    # THEN nothing moved: the epochs were too short in time (EPOCH_SECONDS) to be read
    assert limit.limit == 16


def test_the_setting_reaches_the_pool(tmp_path: Path) -> None:
    registry = Registry({})
    for value, adaptive in (("", True), ("false", False), ("true", True)):
        env = {"HARVEST_DATA_DIR": str(tmp_path), "HARVEST_DOWNLOAD_CONCURRENCY": "8"}
        if value:
            env["HARVEST_DOWNLOAD_ADAPTIVE"] = value
        deps = build_harvest_deps(Settings.from_env(env), registry=registry)
        assert deps.downloads.limit.adaptive is adaptive
        assert deps.downloads.limit.limit == 8
