"""`python -m bench.clients`: what the HTTP client costs per segment, measured, not guessed.

The same segment URLs (the benchmark's window, from the benchmark's origin in its own process) are
downloaded by several Python HTTP clients with the same parallelism, bodies read in 256 KB pieces
and dropped, so only the client's own work is timed: wall seconds and this process's CPU seconds
(every thread). With `--busy-thread` each client is also timed while another thread of the same
process runs pure Python without pause (what planning a long playlist or answering the API does
to a `harvest serve`): a client whose bytes need the GIL often, from few threads, stalls behind it.
`HttpOrigin` is the product's client (the connect-time URL guard, hop-by-hop
redirects, retries, strict lengths), measured with each of its two segment clients: libcurl
(pycurl, the default) and requests (the fallback without pycurl); the others are the bare clients
underneath.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import requests
import urllib3

from bench.media import PoolRequest, build_bench_pool
from bench.origin_setup import REPO_ROOT, BenchChannel, OriginProcess, recent_window
from harvest.adapters.http_origin import HttpOrigin
from harvest.adapters.retry import RetryPolicy
from harvest.domain.urlpolicy import UrlPolicy
from harvest.settings import Settings

READ = 256 * 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _threaded(urls: Sequence[str], threads: int, fetch: Callable[[str], int]) -> int:
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(fetch, urls))


def product(urls: Sequence[str], threads: int, client: Literal["curl", "requests"] = "curl") -> int:
    origin = HttpOrigin(
        RetryPolicy(3, 0.1), 10.0, threads, targets=UrlPolicy.for_origins(Settings()), client=client
    )

    def drain(chunks: Iterator[bytes]) -> int:
        return sum(len(chunk) for chunk in chunks)

    with origin:
        return _threaded(urls, threads, lambda url: origin.stream(url, {}, None, drain))


def plain_requests(urls: Sequence[str], threads: int) -> int:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=threads, pool_maxsize=threads, max_retries=0)
    session.mount("http://", adapter)

    def fetch(url: str) -> int:
        with session.get(url, stream=True, timeout=10) as response:
            return sum(len(chunk) for chunk in iter(lambda: response.raw.read(READ), b""))

    return _threaded(urls, threads, fetch)


def plain_urllib3(urls: Sequence[str], threads: int) -> int:
    pool = urllib3.PoolManager(maxsize=threads, retries=False, timeout=10.0)

    def fetch(url: str) -> int:
        response = pool.request("GET", url, preload_content=False)
        try:
            return sum(len(chunk) for chunk in iter(lambda: response.read(READ), b""))
        finally:
            response.release_conn()

    return _threaded(urls, threads, fetch)


def pycurl_multi(urls: Sequence[str], threads: int) -> int:
    import pycurl  # measured only where it is installed: not a project dependency

    multi = pycurl.CurlMulti()
    free = []
    for _ in range(threads):
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)
        free.append(handle)
    pending = list(reversed(urls))
    total = 0
    sizes: dict[int, list[int]] = {}

    def start(handle: Any) -> None:
        counter = [0]
        sizes[id(handle)] = counter
        handle.setopt(pycurl.URL, pending.pop())
        handle.setopt(pycurl.WRITEFUNCTION, lambda data: counter.__setitem__(0, counter[0] + len(data)))
        multi.add_handle(handle)

    while free and pending:
        start(free.pop())
    active = threads - len(free)
    while active:
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        _queued, ok, failed = multi.info_read()
        for handle in ok:
            multi.remove_handle(handle)
            total += sizes[id(handle)][0]
            active -= 1
            if pending:
                start(handle)
                active += 1
        if failed:
            raise RuntimeError(f"pycurl: {failed[0][2]}")
        multi.select(0.1)
    return total


CLIENTS: dict[str, Callable[[Sequence[str], int], int]] = {
    "HttpOrigin (product, libcurl)": product,
    "HttpOrigin (product, requests fallback)": lambda urls, threads: product(urls, threads, "requests"),
    "requests.Session": plain_requests,
    "urllib3.PoolManager": plain_urllib3,
    "pycurl multi (libcurl)": pycurl_multi,
}


@contextlib.contextmanager
def busy_thread() -> Iterator[None]:
    """While inside: another thread runs pure Python, taking the GIL whenever it is offered."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(10_000))

    thread = threading.Thread(target=spin, name="busy", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


Client = Callable[[Sequence[str], int], int]


def _timed(client: Client, urls: Sequence[str], threads: int) -> tuple[float, float]:
    cpu, began = _cpu(), time.perf_counter()
    client(urls, threads)
    return time.perf_counter() - began, _cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    p.add_argument("--window", type=float, default=900.0)
    p.add_argument("--renditions", type=int, default=3)
    p.add_argument("--segment-kb", type=int, default=1024)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--busy-thread", action="store_true", help="also time each client beside a thread running pure Python"
    )
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out")
    args = p.parse_args(argv)
    work = args.out.resolve() / "clients-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pool = build_bench_pool(
        args.out.resolve() / "media", PoolRequest(args.renditions, 6, args.segment_kb, 10)
    )
    report = io.StringIO()
    with OriginProcess([BenchChannel("bench", pool, int(args.window) + 3 * 3600)], work) as origin:
        urls = [url for _, url in origin.segment_urls("bench", recent_window(int(args.window), 6))]
        print(f"{len(urls)} segments, {args.threads} parallel, best of {args.repeat}", file=report)
        busy = " wall s beside a busy thread |" if args.busy_thread else ""
        rule = "---:|" if args.busy_thread else ""
        print(f"| client | wall s | CPU s | CPU ms per segment |{busy}", file=report)
        print(f"|---|---:|---:|---:|{rule}", file=report)
        for name, client in CLIENTS.items():
            try:
                runs = [_timed(client, urls, args.threads) for _ in range(args.repeat)]
                beside = []
                if args.busy_thread:
                    with busy_thread():
                        beside = [_timed(client, urls, args.threads)[0] for _ in range(args.repeat)]
            except ImportError:
                print(f"| {name} | not installed | | |", file=report)
                continue
            wall, cpu = min(runs, key=lambda run: run[1])
            extra = f" {min(beside):.2f} |" if beside else ""
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {1000 * cpu / len(urls):.2f} |{extra}", file=report)
    shutil.rmtree(work, ignore_errors=True)
    print(report.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
