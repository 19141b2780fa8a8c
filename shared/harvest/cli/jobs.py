"""`harvest create | jobs | job | delete | cancel | wait`: daily use of the API through the Tencent SDK;
`harvest keys issue`: temporary credentials, written straight into the job database."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from harvest.cli.client import ClientConfig, HarvestClient
from harvest.ports import CredentialStore

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1.5h', '1d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 5m, 1h)")
    return float(match.group(1)) * _UNIT[match.group(2)]


def time_format_of(value: str) -> str:
    return "Epoch seconds" if value.strip().isdigit() else "ISO-8601"


def add_client_commands(sub: Any) -> None:
    create = sub.add_parser("create", help="create a harvest job", description="Create a harvest job.")
    create.add_argument("--id", required=True, help="job ID: 1-128 of A-Z a-z 0-9 _ -")
    create.add_argument("--channel", required=True, help="ChannelName in the channel registry")
    create.add_argument("--endpoint", required=True, help="EndpointName of that channel")
    window = create.add_mutually_exclusive_group(required=True)
    window.add_argument("--start", help="StartTime: epoch seconds or ISO-8601 with offset (needs --end)")
    window.add_argument("--last", type=parse_duration, help="harvest the last DURATION ending now, e.g. 5m")
    create.add_argument("--end", help="EndTime, same format as --start")
    create.add_argument(
        "--destination", help="COS URL https://<bucket>-<appid>.cos.<region>.myqcloud.com/<prefix>"
    )
    create.add_argument("--manifest", help="master playlist key under Destination (default <ID>/index.m3u8)")
    create.add_argument("--callback-url", help="URL to POST the job record to when it ends")
    create.add_argument("--wait", action="store_true", help="then wait for the job, showing progress")
    create.set_defaults(func=cmd_create)

    jobs = sub.add_parser("jobs", help="list harvest jobs", description="List harvest jobs, newest last.")
    jobs.add_argument("--channel", help="only jobs of this ChannelName")
    jobs.add_argument("--status", choices=["Running", "Completed", "Failed"], help="only jobs in this status")
    jobs.add_argument("--page", type=int, default=1, help="1-based page (default 1)")
    jobs.add_argument("--page-size", type=int, default=20, help="jobs per page, 1-1000 (default 20)")
    jobs.add_argument("--all", action="store_true", help="fetch every page")
    jobs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    jobs.set_defaults(func=cmd_jobs)

    job = sub.add_parser("job", help="show one job", description="Show one harvest job's record.")
    job.add_argument("id")
    job.set_defaults(func=cmd_job)

    delete = sub.add_parser(
        "delete", help="delete jobs", description="Delete Completed or Failed jobs (all or none)."
    )
    delete.add_argument("ids", nargs="+", metavar="ID")
    delete.set_defaults(func=cmd_delete)

    cancel = sub.add_parser(
        "cancel",
        help="cancel a Running job",
        description="Stop a Running job: it becomes Failed ('cancelled by <SecretId> at <time>'); objects"
        " already written stay in the bucket; its CallbackURL is called once.",
    )
    cancel.add_argument("id")
    cancel.set_defaults(func=cmd_cancel)

    wait = sub.add_parser(
        "wait",
        help="wait for a job",
        description="Show progress until the job ends. Exit 0 if Completed, 1 if Failed.",
    )
    wait.add_argument("id")
    wait.add_argument(
        "--timeout", type=parse_duration, default=3600.0, help="give up after this long (exit 4)"
    )
    wait.set_defaults(func=cmd_wait)

    keys = sub.add_parser("keys", help="temporary credentials", description="Manage temporary credentials.")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    issue = keys_sub.add_parser(
        "issue",
        help="mint a temporary SecretId/SecretKey/Token",
        description="Mint a temporary SecretId/SecretKey/Token triple in the job database"
        " (HARVEST_DATABASE_URL or the SQLite file under HARVEST_DATA_DIR), usable as"
        " credential.Credential(id, key, token)"
        " until it expires. The token is stored only as a hash: this is the one time it is shown.",
    )
    issue.add_argument(
        "--ttl", type=parse_duration, default=3600.0, help="lifetime, e.g. 15m, 1h (default 1h)"
    )
    issue.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="ACTION",
        help="an action (or pattern like 'Describe*') the key may call; repeat for more (default: all)",
    )
    issue.set_defaults(func=cmd_keys_issue)
    revoke = keys_sub.add_parser(
        "revoke",
        help="revoke a temporary key at once",
        description="Delete a temporary key before it expires.",
    )
    revoke.add_argument("secret_id", metavar="SECRET_ID")
    revoke.set_defaults(func=cmd_keys_revoke)

    for parser in (create, jobs, job, delete, cancel, wait):
        parser.add_argument(
            "--api", help="API endpoint host:port (default $HARVEST_ENDPOINT or 127.0.0.1:8080)"
        )


def _client(args: argparse.Namespace) -> HarvestClient:
    return HarvestClient(ClientConfig.from_env(endpoint=args.api))


def run_client_command(args: argparse.Namespace) -> int:
    """Run a client command, turning API errors into messages a person can act on."""
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except TencentCloudSDKException as exc:
        code = exc.get_code() or "Error"
        if code in ("ClientNetworkError", "ServerNetworkError"):
            print(
                f"error: cannot reach the harvest API at {ClientConfig.from_env(endpoint=args.api).endpoint}:"
                f" {exc.get_message()}\n(start it with `harvest serve`, or set --api / HARVEST_ENDPOINT)",
                file=sys.stderr,
            )
            return EXIT_UNREACHABLE
        hint = " (check HARVEST_SECRET_ID / HARVEST_SECRET_KEY)" if code.startswith("AuthFailure") else ""
        print(f"error: {code}: {exc.get_message()}{hint}", file=sys.stderr)
        return EXIT_FAILED


def cmd_create(args: argparse.Namespace) -> int:
    if args.last is not None:
        end = int(time.time()) - 1
        start_s, end_s = str(int(end - args.last)), str(end)
    else:
        if not args.end:
            print("error: --start needs --end", file=sys.stderr)
            return EXIT_USAGE
        start_s, end_s = args.start, args.end
    if time_format_of(start_s) != time_format_of(end_s):
        print("error: --start and --end must use the same format", file=sys.stderr)
        return EXIT_USAGE
    params = {
        "ID": args.id,
        "ChannelName": args.channel,
        "EndpointName": args.endpoint,
        "TimeFormat": time_format_of(start_s),
        "StartTime": start_s,
        "EndTime": end_s,
        "Destination": args.destination,
        "Manifest": args.manifest,
        "CallbackURL": args.callback_url,
    }
    client = _client(args)
    info = client.create({k: v for k, v in params.items() if v})
    print(json.dumps(info, indent=2, ensure_ascii=False))
    if args.wait:
        return wait_for(client, args.id, 3600.0, sys.stderr)
    return EXIT_OK


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ["ID", "ChannelName", "EndpointName", "Status", "StartTime", "EndTime", "CreateTime", "ErrMessage"]
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [min(60, max(len(c), *(len(row[i]) for row in cells))) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def cmd_jobs(args: argparse.Namespace) -> int:
    client = _client(args)
    rows, total = client.list(args.channel, args.page, args.page_size)
    page = args.page
    while args.all and page * args.page_size < total:
        page += 1
        more, total = client.list(args.channel, page, args.page_size)
        rows += more
    if args.status:
        rows = [r for r in rows if r.get("Status") == args.status]
    if args.json:
        print(json.dumps({"Infos": rows, "TotalNum": total}, indent=2, ensure_ascii=False))
    else:
        print(_table(rows))
        print(f"({len(rows)} shown, {total} in all)")
    return EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).describe(args.id), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    _client(args).delete(args.ids)
    print(f"deleted {len(args.ids)} job(s)")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    info = _client(args).cancel(args.id)
    print(f"job {args.id} {info.get('Status')}: {info.get('ErrMessage', '')}")
    return EXIT_OK


@contextmanager
def _credential_store() -> Iterator[CredentialStore]:
    """The job database's temporary keys, as the API function sees them (HARVEST_DATABASE_URL / _DATA_DIR)."""
    from harvest.adapters.sql import Database, SqlCredentialStore
    from harvest.settings import Settings

    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with Database.connect(settings.effective_database_url, pool_size=1) as db:
        yield SqlCredentialStore(db)


def cmd_keys_issue(args: argparse.Namespace) -> int:
    from harvest.domain.credentials import mint

    try:
        issued = mint(args.ttl, tuple(args.scope), time.time())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with _credential_store() as store:
        store.add(issued.key)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued.key.expires_at))
    print(
        json.dumps(
            {
                "SecretId": issued.key.secret_id,
                "SecretKey": issued.key.secret_key,
                "Token": issued.token,
                "ExpiresAt": expires,
                "Scope": list(issued.key.scope),
            },
            indent=2,
        )
    )
    return EXIT_OK


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with _credential_store() as store:
        revoked = store.revoke(args.secret_id)
    if not revoked:
        print(f"error: no temporary key {args.secret_id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"revoked {args.secret_id}")
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    return wait_for(_client(args), args.id, args.timeout, sys.stderr)


def render_bar(progress: dict[str, Any], rate: float, width: int = 30) -> str:
    total = int(progress.get("SegmentsTotal") or 0)
    done = int(progress.get("SegmentsDone") or 0)
    mb = int(progress.get("BytesDone") or 0) / 1e6
    phase = progress.get("Phase", "")
    if total <= 0:
        return f"[{'.' * width}] {phase}"
    filled = int(width * min(done, total) / total)
    bar = "#" * filled + "-" * (width - filled)
    return f"[{bar}] {done}/{total} segments  {mb:.1f} MB  {rate:.1f} MB/s  {phase}"


def wait_for(client: HarvestClient, job_id: str, timeout: float, out: TextIO, poll: float = 0.5) -> int:
    """Poll until the job ends, drawing a progress bar; exit code 0 Completed, 1 Failed, 4 timeout."""
    start = time.monotonic()
    last_bytes, last_t = 0, start
    rate = 0.0
    tty = out.isatty()
    last_line = 0.0
    warned = 0  # warnings already shown (malformed playlist tags outside the window)
    while True:
        progress = client.progress(job_id)
        now = time.monotonic()
        got = int(progress.get("BytesDone") or 0)
        if now > last_t:
            rate = (
                0.7 * rate + 0.3 * ((got - last_bytes) / 1e6 / (now - last_t))
                if last_t != start
                else (got / 1e6 / max(now - start, 1e-6))
            )
        last_bytes, last_t = got, now
        status = progress.get("Status")
        for warning in progress.get("Warnings", [])[warned:]:
            out.write(f"{chr(13) if tty else ''}warning: {warning}\n")
            warned += 1
        bar = render_bar(progress, rate)
        if tty:
            out.write("\r" + bar)
        elif now - last_line >= 2.0 or status != "Running":
            out.write(bar + "\n")
            last_line = now
        out.flush()
        if status != "Running":
            if tty:
                out.write("\n")
            info = client.describe(job_id)
            if status == "Completed":
                out.write(f"job {job_id} Completed\n")
                return EXIT_OK
            out.write(f"job {job_id} Failed: {info.get('ErrMessage', '')}\n")
            return EXIT_FAILED
        if now - start > timeout:
            out.write(f"\ngave up waiting for {job_id} after {timeout:.0f} s (it is still Running)\n")
            return EXIT_TIMEOUT
        time.sleep(poll)
