"""The README "Reliability" table: each scenario, what was injected, what the suite observed.

The reliability tests record their observed outcome through the `reliability_record` fixture
(tests/reliability/conftest.py); at the end of a pytest session the records are written to
tests/.reliability.json (merged across pytest-xdist workers). This module renders that file:

    python -m tests.reliability.table            # Markdown table on stdout
    python -m tests.reliability.table --check README.md   # exit 1 if README lacks a scenario

SCENARIOS is the fixed list and order of rows; a test may only record one of these names, and
`missing_from(readme_text)` lists those a README does not mention.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

# record(scenario, injected, outcome): what the `reliability_record` fixture gives a test.
Recorder = Callable[[str, str, str], None]

TABLE_HEADER = "| Scenario | Injected | Observed outcome | Test |"
ROWS_FILE = Path(__file__).resolve().parents[1] / ".reliability.json"

# Scenario name -> what is injected (the default text; a test may record a more exact one).
SCENARIOS: dict[str, str] = {
    # faults
    "Flaky origin": "20% of segment requests 503, 10% cut short, 5% stall past the fetch timeout",
    "Permanently missing video segment": "one segment answers 404 for ever",
    "Permanently missing audio segment": "one audio segment answers 404 for ever",
    "Init section that never loads": "the fMP4 init section answers 503 for ever",
    "Origin down for the whole job": "every connection closed without an answer",
    # crashes
    "harvest serve killed mid-harvest": "SIGKILL while a chunk is half stored, then a restart",
    "Every message delivered twice": "each plan/chunk/finalize message published twice, then all again",
    "Two harvest serve processes on one PostgreSQL": "two processes consuming one queue",
    # outages
    "PostgreSQL crash-restart mid-harvest": "immediate shutdown of PostgreSQL for 15 s mid-job",
    "COS outage mid-chunk": "every object-store request answers 503 for a while",
    "SQLite database is locked": "another process holds SQLite's write lock past the busy timeout",
    # concurrency
    "Concurrent duplicate Creates": "200 concurrent Creates over 50 IDs through HTTP",
    # fuzzing
    "Fuzzed API events": "random JSON, types, unicode, huge strings, headers, methods, auth",
    "Fuzzed API requests over HTTP": "random bodies, headers and methods through the gateway",
    # hostile playlists
    "Playlist over the size limit": "a 65 MB media playlist",
    "Master that lists itself": "a master whose variant URI is the master",
    "Absurd segment durations": "#EXTINF of 1e12, -1, nan",
    "Playlist without #EXTM3U": "the header line missing",
    "Segment without #EXTINF": "a segment URI with no duration",
    "Ended playlist without PROGRAM-DATE-TIME": "VOD playlist with no PDT at all",
    "300k-segment playlist": "300,000 segments in one media playlist",
    "Binary garbage playlist": "random bytes instead of a playlist",
    # memory
    "Big segments, bounded memory": "8 x 64 MiB segments fetched at once",
    "Plans at the task cap, bounded memory": "windows needing HARVEST_MAX_PLAN_TASKS downloads",
    "Huge playlist, bounded memory": "63 MiB of short lines in one media playlist",
    # security
    "Replayed signed request": "the same signed request sent twice (replay protection on)",
    "Stale signature": "a request signed more than 300 s ago",
    "CallbackURL to a private address": "127.0.0.1, 10.x, 169.254.169.254, localhost",
    "Callback redirect to a private address": "the receiver answers 302 to 127.0.0.1",
    "Playlist aimed at the metadata service": "a segment URI (or a redirect) to a loopback metadata stand-in",
    "Endpoint headers sent to another host": "a variant and segments on another host, and a redirect there",
    "Callback address disguised as IPv6 or a legacy form": "6to4, IPv4-mapped, metadata and hex forms",
    "Slow CallbackURL receiver": "the receiver answers a byte every 2 s; one queue consumer",
    "Crash while delivering a callback": "SIGKILL while the receiver holds the POST, then a restart",
    "Destination outside the allowed buckets": "a bucket not in HARVEST_ALLOWED_BUCKETS",
    "Manifest path tricks": "a//b/./c.m3u8, ../x, /abs",
    "Oversized request body": "a body over the configured cap",
    "Secrets in logs": "known secret strings in config, requests and callback URLs",
    "Credentials, tokens and paths in ErrMessage": "user:password@, ?token= in endpoint URLs; a disk error",
    "CSS callback signature and expiry": "a wrong sign, an expired t",
    # hostile HTTP clients (harvest serve's server)
    "1,000 idle or trickling connections": "500 idle + 500 trickling connections while the SDK calls",
    "Request bodies over the limit and broken framing": "200 MiB bodies, chunk size -1, bad framing",
    # live events (CSS / StreamLive callbacks)
    "Replayed live-event notification": "one stop notification delivered again, also after a delete",
    "Live-event signature time window": "t ten years ahead, 901 s ahead, 1 s ago",
    "Live-event flood from one source": "many forged stops from one address at once",
    "StreamLive input with two pipelines": "both pipelines of one input report the stop",
    "Live-event job ID squatting": "an API Create taking the ID a stop will use",
    # keys with scopes
    "Keys with scopes": "keys limited by actions, channels and buckets calling across scopes",
    "Destination with no allow-list": "a Create to another bucket, HARVEST_ALLOWED_BUCKETS unset",
}

# Scenarios covered by tests outside this suite: (test, what it asserts) instead of a recorded outcome.
REFERENCED: dict[str, tuple[str, str]] = {
    "CSS callback signature and expiry": (
        "tests/integration/test_live_event_end.py::test_a_bad_sign_is_refused_with_403,"
        " ::test_an_expired_t_is_refused_with_403",
        "HTTP 403, no job created (asserted there)",
    ),
}


def load_records(path: Path = ROWS_FILE) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [dict(record) for record in data.get("records", [])]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _short_test(nodeid: str) -> str:
    # "tests/reliability/test_faults.py::test_x[ts-v1]" -> "test_faults.py::test_x" (the row says which case)
    return nodeid.split("[", 1)[0].rsplit("/", 1)[-1]


def render(records: Iterable[Mapping[str, str]]) -> str:
    """The Markdown table, one row per scenario in SCENARIOS order (several records: several rows)."""
    by_scenario: dict[str, list[Mapping[str, str]]] = {}
    for record in records:
        by_scenario.setdefault(record["scenario"], []).append(record)
    lines = [TABLE_HEADER, "|---|---|---|---|"]
    for scenario, injected in SCENARIOS.items():
        rows = by_scenario.get(scenario, [])
        if scenario in REFERENCED and not rows:
            test, outcome = REFERENCED[scenario]
            lines.append(f"| {_cell(scenario)} | {_cell(injected)} | {_cell(outcome)} | `{_cell(test)}` |")
            continue
        if not rows:
            lines.append(f"| {_cell(scenario)} | {_cell(injected)} | (not run) | |")
            continue
        for row in sorted(rows, key=lambda r: r["test"]):
            lines.append(
                f"| {_cell(scenario)} | {_cell(row['injected'])} | {_cell(row['outcome'])}"
                f" | `{_cell(_short_test(row['test']))}` |"
            )
    return "\n".join(lines) + "\n"


def missing_from(text: str) -> list[str]:
    """Scenario names that `text` (a README) does not mention."""
    return [name for name in SCENARIOS if name not in text]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.table", description=__doc__)
    parser.add_argument("--records", type=Path, default=ROWS_FILE, help="the JSON the suite wrote")
    parser.add_argument("--check", type=Path, help="exit 1 when this file lacks a scenario name")
    args = parser.parse_args(argv)
    if args.check is not None:
        missing = missing_from(args.check.read_text(encoding="utf-8"))
        for name in missing:
            print(f"missing from {args.check}: {name}", file=sys.stderr)
        return 1 if missing else 0
    records = load_records(args.records)
    if not records:
        print(f"no records in {args.records}: run `pytest tests/reliability` first", file=sys.stderr)
    sys.stdout.write(render(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
