"""`harvest admin dead-letters | replay | stuck`: an operator's view of the queue and the jobs.

These commands talk to the database directly (the same HARVEST_DATABASE_URL, or the SQLite file
under --data-dir, as `harvest serve`), not to the API: they see what clients never see (queue
messages, their errors) and they work while the API is down. They are safe to run while
`harvest serve` is running, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from harvest.errors import HarvestError, JobNotFound

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2
DEFAULT_STUCK_MINUTES = 10.0


def add_admin_commands(sub: Any) -> None:
    admin = sub.add_parser(
        "admin",
        help="operate the service: dead letters, replays, stuck jobs",
        description="Inspect and mend the service through its database (see docs/operations.md).",
    )
    commands = admin.add_subparsers(dest="admin_command", required=True, metavar="ADMIN_COMMAND")

    dead = commands.add_parser(
        "dead-letters",
        help="list dead-lettered messages with their last error",
        description=(
            "List queue messages that used up their attempts (HARVEST_QUEUE_MAX_ATTEMPTS), oldest first,"
            " with the job, the step and the last error."
        ),
    )
    dead.add_argument("--job", help="only this job's")
    _common(dead)

    replay = commands.add_parser(
        "replay",
        help="put dead-lettered messages back on the queue",
        description=(
            "Give dead-lettered messages fresh attempts. With --job, replay that job's dead letters, or,"
            " when it has none (CKafka keeps none in the database), queue its unfinished steps again."
            " Steps already done are skipped by the workers, so replaying is always safe."
        ),
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="dead letter IDs")
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("--job", help="everything this job is waiting for")
    _common(replay)

    stuck = commands.add_parser(
        "stuck",
        help="list Running jobs that have not moved for a while",
        description="List Running jobs without progress for --minutes, with their phase and last error.",
    )
    stuck.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_STUCK_MINUTES,
        help=f"no progress for this long (default {DEFAULT_STUCK_MINUTES:g})",
    )
    _common(stuck)
    admin.set_defaults(admin=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="the data dir `harvest serve` uses (HARVEST_DATA_DIR)")
    parser.add_argument("--database-url", help="postgresql://... (HARVEST_DATABASE_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_admin_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up per call: tests (and callers) may replace sys.stdout
    err = err or sys.stderr
    from harvest.composition import build_backend, build_operations
    from harvest.settings import Settings

    if args.admin_command == "replay" and not (args.ids or args.all or args.job):
        print("error: name dead letter IDs, or use --all or --job", file=err)
        return EXIT_USAGE
    env = dict(os.environ)
    if args.data_dir:
        env["HARVEST_DATA_DIR"] = args.data_dir
    if args.database_url:
        env["HARVEST_DATABASE_URL"] = args.database_url
    try:
        settings = Settings.from_env(env)
        if not settings.database_url and not (settings.data_dir / "harvest.db").exists():
            print(
                f"error: no database at {settings.data_dir / 'harvest.db'}:"
                " pass --data-dir or --database-url",
                file=err,
            )
            return EXIT_USAGE
        backend = build_backend(settings)
    except HarvestError as exc:
        print(f"error: {exc.message}", file=err)
        return EXIT_USAGE
    try:
        operations = build_operations(backend)
        if args.admin_command == "dead-letters":
            return _dead_letters(operations, args, out)
        if args.admin_command == "replay":
            return _replay(backend, operations, args, out, err)
        return _stuck(backend, operations, args, out)
    finally:
        backend.db.close()


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


def _dead_letters(operations: Any, args: argparse.Namespace, out: TextIO) -> int:
    letters = operations.dead_letters(args.job)
    now = time.time()
    if args.json:
        print(json.dumps([_letter_json(letter) for letter in letters], indent=1), file=out)
        return EXIT_OK
    if not letters:
        print("no dead letters" + (f" for job {args.job}" if args.job else ""), file=out)
        return EXIT_OK
    rows = [("ID", "JOB", "STEP", "TOPIC", "ATTEMPTS", "QUEUED", "LAST ERROR")]
    rows += [
        (
            str(letter.id),
            letter.job_id,
            letter.step,
            letter.topic,
            str(letter.attempts),
            _age(now - letter.created_at) + " ago",
            letter.error,
        )
        for letter in letters
    ]
    _table(rows, out)
    print(f"{len(letters)} dead letter(s); `harvest admin replay ID|--all` puts them back", file=out)
    return EXIT_OK


def _letter_json(letter: Any) -> dict[str, Any]:
    return {
        "ID": letter.id,
        "JobId": letter.job_id,
        "Step": letter.step,
        "Topic": letter.topic,
        "Attempts": letter.attempts,
        "QueuedAt": letter.created_at,
        "LastError": letter.error,
    }


def _replay(backend: Any, operations: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from harvest.usecases.operations import replay

    try:
        result = replay(
            backend.store,
            backend.queue,
            operations,
            ids=None if args.all else (args.ids or None),
            job_id=args.job,
        )
    except JobNotFound as exc:
        print(f"error: {exc.message}", file=err)
        return EXIT_NOTHING
    if args.json:
        body = {"Replayed": [_letter_json(letter) for letter in result.replayed], "Requeued": result.requeued}
        print(json.dumps(body, indent=1), file=out)
    for letter in [] if args.json else result.replayed:
        print(f"replayed {letter.id}: job {letter.job_id} {letter.step}", file=out)
    if result.requeued and not args.json:
        print(
            f"job {args.job} had no dead letter: queued its {result.requeued} unfinished step(s) again",
            file=out,
        )
    missing = sorted(set(args.ids) - {letter.id for letter in result.replayed})
    if missing:
        print(
            f"not dead letters (already replayed, acked or unknown): {', '.join(map(str, missing))}", file=err
        )
    if not result.replayed and not result.requeued:
        if not missing:
            print("nothing to replay", file=err)
        return EXIT_NOTHING
    return EXIT_OK


def _stuck(backend: Any, operations: Any, args: argparse.Namespace, out: TextIO) -> int:
    from harvest.usecases.operations import stuck_jobs

    stuck = stuck_jobs(backend.store, operations, args.minutes * 60, time.time())
    if args.json:
        body = [
            {
                "ID": item.job.id,
                "ChannelName": item.job.channel_name,
                "Phase": item.job.phase.value,
                "ChunksDone": item.job.chunks_done,
                "ChunksTotal": item.job.chunks_total,
                "SegmentsDone": item.job.segments_done,
                "SegmentsTotal": item.job.segments_total,
                "IdleSeconds": round(item.idle_seconds, 1),
                "LastError": item.last_error,
            }
            for item in stuck
        ]
        print(json.dumps(body, indent=1), file=out)
        return EXIT_OK
    if not stuck:
        print(f"no Running job has been idle for {args.minutes:g} minutes", file=out)
        return EXIT_OK
    rows = [("JOB", "CHANNEL", "PHASE", "CHUNKS", "SEGMENTS", "IDLE", "LAST ERROR")]
    rows += [
        (
            item.job.id,
            item.job.channel_name,
            item.job.phase.value,
            f"{item.job.chunks_done}/{item.job.chunks_total}",
            f"{item.job.segments_done}/{item.job.segments_total}",
            _age(item.idle_seconds),
            item.last_error or "-",
        )
        for item in stuck
    ]
    _table(rows, out)
    print(f"{len(stuck)} stuck job(s); `harvest admin replay --job ID` moves one on", file=out)
    return EXIT_OK
