"""`harvest`: the command line. Server commands set HARVEST_* settings; client commands use the SDK."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from harvest.cli.admin import add_admin_commands, run_admin_command
from harvest.cli.jobs import EXIT_USAGE, add_client_commands, run_client_command

# option -> environment variable: every serve option can also be set by the environment.
SERVE_OPTIONS = {
    "host": "HARVEST_HOST",
    "port": "HARVEST_PORT",
    "data_dir": "HARVEST_DATA_DIR",
    "channels": "HARVEST_CHANNELS",
    "database_url": "HARVEST_DATABASE_URL",
    "workers": "HARVEST_WORKERS",
    "region": "HARVEST_REGION",
    "tls_cert": "HARVEST_TLS_CERT",
    "tls_key": "HARVEST_TLS_KEY",
}


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the API, the queue pump and the local bucket on this machine",
        description=(
            "Run the harvest service on one machine: the API (Tencent Cloud API 3.0), N queue consumers"
            " calling the worker and finalizer handlers, and the local bucket over HTTP under /cos/."
            " Credentials come from HARVEST_SECRET_ID / HARVEST_SECRET_KEY."
        ),
    )
    serve.add_argument("--host", help="listen address (HARVEST_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (HARVEST_PORT, default 8080)")
    serve.add_argument(
        "--data-dir",
        help="SQLite file, queue and local bucket live here (HARVEST_DATA_DIR, default ./.harvest)",
    )
    serve.add_argument("--channels", help="channel registry YAML (HARVEST_CHANNELS, default channels.yaml)")
    serve.add_argument(
        "--database-url", help="postgresql://... to share one database between many serve processes"
    )
    serve.add_argument("--workers", type=int, help="concurrent queue consumers (HARVEST_WORKERS, default 4)")
    serve.add_argument("--region", help="the region this service answers for (HARVEST_REGION)")
    serve.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve HTTPS with this PEM certificate, chain after it (HARVEST_TLS_CERT); SIGHUP reloads it",
    )
    serve.add_argument(
        "--tls-key", metavar="FILE", help="the certificate's unencrypted PEM private key (HARVEST_TLS_KEY)"
    )
    serve.add_argument(
        "--tls-self-signed",
        action="store_true",
        default=None,
        help="serve HTTPS with a self-signed certificate kept in DATA_DIR/tls/ (HARVEST_TLS_SELF_SIGNED);"
        " prints its fingerprint and how to trust it",
    )

    origin = sub.add_parser(
        "demo-origin",
        help="run a live HLS demo channel with a DVR window",
        description="Serve real live HLS channels (made with ffmpeg on first run) with a DVR window and PDT.",
    )
    origin.add_argument("--host", default="127.0.0.1")
    origin.add_argument("--port", type=int, default=8081)
    origin.add_argument("--data-dir", default=".harvest", help="media pool cache lives under DATA_DIR/media")
    origin.add_argument(
        "--dvr-window", type=int, default=3600, help="seconds of history served (default 3600)"
    )
    origin.add_argument("--kinds", default="ts", help="comma-separated: ts,fmp4,aes,byterange (default ts)")
    origin.add_argument("--channels-out", help="also write a channel registry YAML for `harvest serve` here")

    demo = sub.add_parser(
        "demo",
        help="the whole product in one command",
        description="Start a live demo channel and the local stack, harvest a recent window through the SDK,"
        " and show where the VOD is and how to play it.",
    )
    demo.add_argument("--data-dir", default=".harvest-demo")
    demo.add_argument("--seconds", type=int, default=30, help="length of the harvested window (default 30)")
    demo.add_argument("--keep-running", action="store_true", help="keep serving the VOD until Ctrl-C")

    invoke = sub.add_parser(
        "invoke",
        help="run one function's handler with an event file, like `scf invoke local`",
        description="Run a function handler locally with an event JSON file and print its result.",
    )
    invoke.add_argument("function", choices=["api", "worker", "finalizer", "sweeper", "live_event_end"])
    invoke.add_argument("event", help="path to the event JSON, e.g. events/ckafka_work.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvest", description="Live-to-VOD harvest jobs (StreamPackage API)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    add_client_commands(sub)
    add_admin_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "admin", False):
        return run_admin_command(args)
    if hasattr(args, "func"):
        return run_client_command(args)
    if args.command == "serve":
        for option, env in SERVE_OPTIONS.items():
            value = getattr(args, option)
            if value is not None:
                os.environ[env] = str(value)
        if args.tls_self_signed:
            os.environ["HARVEST_TLS_SELF_SIGNED"] = "1"
        from harvest.local.serve import serve_main

        return serve_main()
    if args.command == "demo-origin":
        from harvest.local.demo import demo_origin_main

        return demo_origin_main(args)
    if args.command == "demo":
        from harvest.local.demo import demo_main

        return demo_main(args)
    if args.command == "invoke":
        from harvest.local.invoke import invoke_main

        return invoke_main(args.function, args.event)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
