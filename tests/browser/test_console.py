"""The Harvest Jobs console in a real browser (Debian's chromium through Playwright) against the
stack `harvest serve` runs: a person signs in, creates a job, watches it complete, plays it and
deletes it, finding every control by its role and accessible name, as a screen reader would."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tencentcloud.mdp.v20200527 import models
from tests.support.browser import BUCKET, REGION, SECRET_ID, SECRET_KEY, Console, keep_screenshot

from harvest.domain.job import HarvestJob, JobStatus

pytest_plugins = ("tests.support.media",)  # media_pools, used by the console fixture
# One worker runs them all: they share one stack and one chromium.
pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.xdist_group("console-browser")]

# Every field of the SDK's HarvestJobResp model.
RECORD_FIELDS = tuple(name[1:] for name in vars(models.HarvestJobResp()) if name.startswith("_"))
HARVEST_TIMEOUT_MS = 90_000


def sign_in(page: Page, secret_key: str = SECRET_KEY) -> None:
    page.get_by_label("SecretId").fill(SECRET_ID)
    page.get_by_label("SecretKey").fill(secret_key)
    page.get_by_role("button", name="Sign in").click()


def job_row(page: Page, job_id: str) -> Any:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=job_id, exact=True))


def shot(page: Page, directory: Path, name: str) -> None:
    path = directory / name
    page.screenshot(path=str(path), full_page=True)
    keep_screenshot(path)


def stored_job(console: Console, job_id: str, status: JobStatus, age: int) -> HarvestJob:
    """A job record put straight into the store (no harvest runs for it), `age` seconds old."""
    now = int(time.time())
    job = HarvestJob(
        id=job_id,
        channel_name="sports",
        endpoint_name="hls",
        time_format="Epoch seconds",
        start_time=str(now - 400),
        end_time=str(now - 300),
        start_epoch=now - 400,
        end_epoch=now - 300,
        destination=console.stack.settings.default_destination,
        manifest=f"{job_id}/index.m3u8",
        callback_url="",
        channel_id="ch-sports",
        region=REGION,
        create_time=now - age,
    )
    store = console.stack.deps.store
    store.create(job, [])
    if status is not JobStatus.RUNNING:
        store.finish(job_id, status, "origin said no" if status is JobStatus.FAILED else "")
    return store.get(job_id)


def test_sign_in_create_watch_play_and_delete(
    console_page: Page, console: Console, screenshot_dir: Path
) -> None:
    page = console_page
    # GIVEN the console, which asks who you are first
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # WHEN a wrong key is given, THEN the API's AuthFailure says so
    sign_in(page, "not-the-key")
    expect(page.get_by_role("alert")).to_contain_text("AuthFailure.SignatureFailure")

    # WHEN the right key is given, THEN the Harvest Jobs list shows, and the key is only in sessionStorage
    sign_in(page)
    expect(page.get_by_role("heading", name="Harvest Jobs", exact=True)).to_be_visible()
    storage = page.evaluate("() => [sessionStorage.length, localStorage.length, document.cookie]")
    assert storage == [1, 0, ""]

    # WHEN a job is created with a bad ID, THEN the field says why as the person types
    page.get_by_role("button", name="Create Harvest Job").click()
    job_id = f"console-{int(time.time())}"
    id_field = page.get_by_label("ID", exact=True)
    id_field.fill("bad id!")
    expect(id_field).to_have_attribute("aria-invalid", "true")
    expect(id_field).to_have_accessible_description(re.compile("Use only letters, digits"))
    # AND with a good one, from the last minute of news, the error goes and Create works
    id_field.fill(job_id)
    expect(id_field).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Origin endpoint").select_option("news/hls")
    page.get_by_role("button", name="Last minute").click()
    shot(page, screenshot_dir, "console-create.png")
    page.get_by_role("button", name="Create", exact=True).click()

    # THEN its Info page shows it Running, with Delete disabled and the reason given
    expect(page.get_by_role("heading", name=f"Harvest job {job_id}")).to_be_visible()
    delete = page.get_by_role("button", name="Delete", exact=True)
    expect(delete).to_be_disabled()
    expect(delete).to_have_accessible_description(re.compile("A Running job cannot be deleted"))

    # AND the list shows it Running, refreshing itself until it is Completed
    page.get_by_role("navigation").get_by_role("link", name="Harvest Jobs").click()
    row = job_row(page, job_id)
    expect(row.get_by_role("button", name="Delete")).to_be_disabled()
    expect(row).to_contain_text("Completed", timeout=HARVEST_TIMEOUT_MS)
    expect(row.get_by_role("button", name="Delete")).to_be_enabled()

    # WHEN its Info is opened
    row.get_by_role("link", name="Info").click()
    record = page.get_by_label("Job record")
    expect(record.locator("[data-field=Status]")).to_have_text("Completed")

    # THEN every HarvestJobResp field is there, with the API's values, and the progress is full
    stored = console.stack.deps.store.get(job_id).to_api()
    for name in RECORD_FIELDS:
        expect(record.get_by_text(name, exact=True)).to_be_visible()
        shown = record.locator(f"[data-field={name}]")
        expect(shown).to_contain_text(str(stored[name]) if stored[name] != "" else "—")
    segments = page.locator("[data-field=Segments]").inner_text()
    done, total = (int(part) for part in segments.split(" / "))
    assert done == total > 0
    local_manifest = re.compile(rf"cos\/{BUCKET}\/vod\/{job_id}\/index\.m3u8$")  # '/' escaped for Playwright
    expect(page.get_by_role("link", name=local_manifest)).to_be_visible()

    # AND the player plays the harvested VOD from the local bucket: currentTime moves 2 s or more
    video = page.get_by_label("VOD player")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function(
        "() => document.querySelector('video').currentTime >= 2", timeout=HARVEST_TIMEOUT_MS
    )
    shot(page, screenshot_dir, "console-info.png")

    # WHEN the channel name is followed, THEN the channel's page lists its endpoint and the job
    record.get_by_role("link", name="news").click()
    expect(page.get_by_role("heading", name="Channel news")).to_be_visible()
    expect(page.get_by_role("table", name="Endpoints of news")).to_contain_text("1 h")
    expect(job_row(page, job_id)).to_contain_text("Completed")

    # WHEN it is deleted there (it is Completed now), THEN it is gone, from the page and the API
    job_row(page, job_id).get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(job_row(page, job_id)).to_have_count(0)
    assert console.stack.deps.store.list(None, 0, 100).total == 0


def test_create_checks_rules_and_shows_api_errors_beside_their_fields(
    console_page: Page, console: Console
) -> None:
    page = console_page
    sign_in(page)
    stored_job(console, "taken-1", JobStatus.COMPLETED, age=60)
    page.get_by_role("button", name="Create Harvest Job").click()
    form = page.get_by_role("form", name="Create Harvest Job")

    # WHEN the start is older than the sports endpoint's 10 min startover window
    page.get_by_label("Origin endpoint").select_option("sports/hls")
    expect(page.get_by_label("Origin endpoint")).to_have_accessible_description(re.compile("10 min"))
    now = int(time.time())
    page.get_by_label("Start time").fill(str(now - 900))
    page.get_by_label("End time").fill(str(now - 800))
    # THEN Start time says so; and a window into the future is refused at End time
    expect(page.get_by_label("Start time")).to_have_accessible_description(re.compile("startover window"))
    page.get_by_label("End time").fill(str(now + 600))
    expect(page.get_by_label("End time")).to_have_accessible_description(re.compile("in the future"))

    # WHEN ISO-8601 is chosen, THEN the times are rewritten in that format
    page.get_by_role("button", name="Last 5 minutes").click()
    page.get_by_label("Time format").select_option("ISO-8601")
    expect(page.get_by_label("Start time")).to_have_value(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"))

    # WHEN the bucket is in another region, THEN COS storage path says which region it must be in
    destination = page.get_by_label("COS storage path")
    destination.fill("https://other-1250000000.cos.ap-guangzhou.myqcloud.com/x/")
    expect(destination).to_have_accessible_description(re.compile(f"this service harvests in {REGION}"))
    destination.fill("")

    # WHEN the Manifest key of an existing job is reused, THEN the overwrite is warned about
    page.get_by_label("ID", exact=True).fill("taken-2")
    page.get_by_label("Manifest key").fill("taken-1/index.m3u8")
    expect(form.get_by_role("status")).to_contain_text("the newest playlist for the asset overwrites")
    page.get_by_label("Manifest key").fill("")

    # WHEN an ID the API knows is taken is submitted, THEN the API's error shows beside ID
    page.get_by_label("ID", exact=True).fill("taken-1")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_label("ID", exact=True)).to_have_accessible_description(
        re.compile(r"already exists \(ResourceInUse\)")
    )
    console.stack.deps.store.delete(["taken-1"])


def test_list_is_newest_first_filters_pages_and_deletes_many(
    console_page: Page, console: Console, screenshot_dir: Path
) -> None:
    page = console_page
    # GIVEN 12 sports jobs, newest last made, one of them Running, two Failed
    for n in range(12):
        status = JobStatus.RUNNING if n == 11 else JobStatus.FAILED if n in (3, 4) else JobStatus.COMPLETED
        stored_job(console, f"list-{n:02d}", status, age=1000 - n)
    sign_in(page)
    page.get_by_label("Channel").select_option("sports")
    page.get_by_label("Rows per page").select_option("10")
    expect(page).to_have_url(re.compile(r"#/jobs\?channel=sports&size=10$"))

    # THEN the newest is first, ten to a page, and it refreshes itself while a job is Running
    rows = page.get_by_role("table", name="Harvest jobs").locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("list-11")
    expect(page.get_by_text("Refreshing every 2 s while a job is Running.")).to_be_visible()
    expect(page.get_by_text("Page 1 of 2 · 12 jobs")).to_be_visible()
    shot(page, screenshot_dir, "console-jobs.png")
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text("list-00")

    # WHEN filtered by status, THEN only those
    page.get_by_label("Status").select_option("Failed")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("list-04")

    # WHEN every job on the page is selected with one Running among them, THEN Delete selected is
    # disabled with the reason; without it, it deletes both selected jobs at once
    page.get_by_label("Status").select_option("")
    # (the unfiltered page has rendered: selecting on the filtered one would be lost with it)
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("list-11")
    page.get_by_label("Select all jobs on this page").check()
    delete_selected = page.get_by_role("button", name=re.compile("^Delete selected"))
    expect(delete_selected).to_be_disabled()
    expect(delete_selected).to_have_accessible_description(re.compile("list-11 is Running"))
    page.get_by_label("Select all jobs on this page").uncheck()
    page.get_by_label("Select list-10").check()
    page.get_by_label("Select list-09").check()
    delete_selected.click()
    page.get_by_role("dialog", name="Delete 2 harvest jobs?").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Page 1 of 1 · 10 jobs")).to_be_visible()
    remaining = {job.id for job in console.stack.deps.store.list("sports", 0, 100).jobs}
    assert "list-10" not in remaining
    assert "list-09" not in remaining
    assert len(remaining) == 10
    console.stack.deps.store.delete(sorted(remaining - {"list-11"}))
    console.stack.deps.store.finish("list-11", JobStatus.FAILED, "test over")
    console.stack.deps.store.delete(["list-11"])


ACCESSIBILITY_AUDIT = """() => {
  const labels = (el) => el.labels && [...el.labels].map((l) => l.textContent).join(' ');
  const name = (el) => (el.getAttribute('aria-label') || labels(el) || el.textContent || '').trim();
  return [...document.querySelectorAll('input, select, button, a, video')]
    .filter(el => el.offsetParent !== null || el.tagName === 'VIDEO')
    .filter(el => !name(el))
    .map(el => el.outerHTML.slice(0, 120));
}"""


@pytest.mark.parametrize("route", ["#/sign-in", "#/jobs", "#/jobs/new", "#/channels", "#/channels/news"])
def test_every_control_has_a_label_or_an_accessible_name(console_page: Page, route: str) -> None:
    page = console_page
    if route != "#/sign-in":
        sign_in(page)
        expect(page.get_by_role("heading", name="Harvest Jobs", exact=True)).to_be_visible()
    page.evaluate("route => { location.hash = route; }", route)
    expect(page.locator("main h1")).to_be_visible()
    assert page.evaluate(ACCESSIBILITY_AUDIT) == []


def test_console_files_are_served_with_types_and_no_cdn(console: Console) -> None:
    import requests

    # WHEN the console's files are fetched
    index = requests.get(console.url, timeout=10)
    script = requests.get(console.url + "console.js", timeout=10)
    config = requests.get(console.url + "config.json", timeout=10).json()
    again = requests.get(
        console.url + "console.js", headers={"If-None-Match": script.headers["ETag"]}, timeout=10
    )

    # THEN they come from this server with their types, the bundle holds hls.js, nothing points elsewhere
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "default-src 'none'" in index.headers["Content-Security-Policy"]
    assert again.status_code == 304
    assert "hls.js" not in index.text
    assert "MediaSource" in script.text
    assert not re.search(
        r"https?://(?!127\.0\.0\.1)[a-z0-9.-]+/[^\"' ]*\.(js|css)\b", index.text + script.text
    )
    assert config == {"region": REGION, "api": "../", "bucket": "../cos/"}


def test_a_failed_job_shows_why_and_sign_out_forgets_the_key(console_page: Page, console: Console) -> None:
    # GIVEN a Failed job
    stored_job(console, "failed-1", JobStatus.FAILED, age=30)
    sign_in(page := console_page)
    expect(page.get_by_role("heading", name="Harvest Jobs", exact=True)).to_be_visible()

    # WHEN its Info is opened from the list
    job_row(page, "failed-1").get_by_role("link", name="Info").click()

    # THEN its ErrMessage is announced, there is nothing to play, and it may be deleted
    expect(page.get_by_role("alert").filter(has_text="origin said no")).to_be_visible()
    expect(page.get_by_text("A failed job has no VOD to play.")).to_be_visible()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_enabled()
    console.stack.deps.store.delete(["failed-1"])

    # WHEN the person signs out, THEN the key is gone from the tab and the console asks again
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
