"""One candidate server (argv: kind port) serving the same trivial app with the same limits."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

LIMIT = 1024 * 1024
KEEP_ALIVE = 15


# `scope` is Any: each server types its scopes differently (hypercorn as a union of TypedDicts), and
# this app reads only scope["type"].
async def asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if size > LIMIT:
            await send({"type": "http.response.start", "status": 413, "headers": [(b"connection", b"close")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def main(kind: str, port: int) -> None:
    if kind == "uvicorn":
        import uvicorn

        uvicorn.run(
            asgi, host="127.0.0.1", port=port, http="h11", timeout_keep_alive=KEEP_ALIVE,
            limit_concurrency=2048, log_level="error",
        )
    elif kind == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.keep_alive_timeout = KEEP_ALIVE
        asyncio.run(serve(asgi, config))
    elif kind == "waitress":
        import waitress

        waitress.serve(
            wsgi, host="127.0.0.1", port=port, channel_timeout=KEEP_ALIVE, connection_limit=2048,
            max_request_body_size=LIMIT, _quiet=True,
        )
    elif kind == "cheroot":
        from cheroot import wsgi as cheroot_wsgi

        server = cheroot_wsgi.Server(("127.0.0.1", port), wsgi, numthreads=10, timeout=KEEP_ALIVE)
        server.max_request_body_size = LIMIT
        server.start()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
