"""DownloadTask's JSON is the dict form plans and chunks held before tasks were typed."""

from __future__ import annotations

import json

from harvest.domain.download import DownloadTask
from harvest.engine.plan import Plan

# A plan as an earlier release stored it (json.dumps of Plan.to_json with dict tasks), verbatim.
STORED_PLAN = (
    '{"format": 1, "bucket": "vod-1250000000", "master_key": "vod/show/index.m3u8",'
    ' "playlists": {"vod/show/index.m3u8": "#EXTM3U\\n"},'
    ' "tasks": [{"url": "http://origin.example/live/101.ts", "key": "vod/show/index/v0/101.ts",'
    ' "range": null, "size": null, "name": "v0/101.ts", "content_type": "video/mp2t", "counts": true},'
    ' {"url": "http://origin.example/live/main.mp4", "key": "vod/show/index/v0/main_0.mp4",'
    ' "range": [0, 800], "size": 800, "name": "v0/main_0.mp4 (bytes 0-799 of main.mp4)",'
    ' "content_type": "video/mp4", "counts": false}],'
    ' "warnings": ["a tag outside the window was malformed"]}'
)


def test_a_plan_stored_before_tasks_were_typed_loads_and_stores_byte_for_byte_the_same() -> None:
    # WHEN a plan stored by an earlier release is loaded
    plan = Plan.from_json(json.loads(STORED_PLAN))
    # THEN its tasks are typed, with every field read
    assert plan.tasks == [
        DownloadTask(
            url="http://origin.example/live/101.ts",
            key="vod/show/index/v0/101.ts",
            range=None,
            size=None,
            name="v0/101.ts",
            content_type="video/mp2t",
            counts=True,
        ),
        DownloadTask(
            url="http://origin.example/live/main.mp4",
            key="vod/show/index/v0/main_0.mp4",
            range=(0, 800),
            size=800,
            name="v0/main_0.mp4 (bytes 0-799 of main.mp4)",
            content_type="video/mp4",
            counts=False,
        ),
    ]
    assert plan.segment_count == 1
    # AND storing it again writes the very same text
    assert json.dumps(plan.to_json()) == STORED_PLAN


def test_a_task_stored_without_its_later_fields_gets_the_meaning_it_always_had() -> None:
    # GIVEN a task with only the fields the first plans had
    stored = {"url": "http://origin.example/live/7.ts", "key": "vod/7.ts", "range": None, "name": "7.ts"}
    # THEN it is a media segment of unknown size stored as octets
    task = DownloadTask.from_json(stored)
    assert (task.size, task.content_type, task.counts) == (None, "application/octet-stream", True)
    assert task.to_json() == {
        **stored,
        "size": None,
        "content_type": "application/octet-stream",
        "counts": True,
    }


def test_a_task_round_trips_through_its_json() -> None:
    task = DownloadTask("http://o/a.mp4", "vod/a_10.mp4", (10, 90), 90, "a_10.mp4", "video/mp4", counts=False)
    assert DownloadTask.from_json(json.loads(json.dumps(task.to_json()))) == task
