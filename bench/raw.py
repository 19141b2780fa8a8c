"""The raw limit: the window's segment URLs downloaded to disk by aria2c (and curl), nothing else.

No playlist work, no database, no bookkeeping: how fast this machine moves these bytes from the
origin to files with a well-tuned native downloader. harvest's time is compared against it, and
against it plus the time to sync the files it wrote (harvest's files are on disk at Completed).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from bench.measure import Measured, run_measured
from bench.origin_setup import local_env


def _relative_name(rendition: str, url: str) -> str:
    return f"{rendition}/{Path(urlsplit(url).path).name}"


def write_aria2_input(path: Path, urls: Sequence[tuple[str, str]]) -> Path:
    # Each URI line may carry options on the indented lines below it; `out` keeps renditions apart
    # (every rendition has a 123.ts).
    lines = []
    for rendition, url in urls:
        lines += [url, f"  out={_relative_name(rendition, url)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def aria2c_command(input_file: Path, out_dir: Path, jobs: int) -> list[str]:
    return [
        "aria2c", "-i", str(input_file), "-j", str(jobs), "-x", "1", "--dir", str(out_dir),
        "--auto-file-renaming=false", "--allow-overwrite=true", "-q",
    ]  # fmt: skip


def write_curl_config(path: Path, urls: Sequence[tuple[str, str]], out_dir: Path) -> Path:
    lines = []
    for rendition, url in urls:
        lines += [f'url = "{url}"', f'output = "{out_dir / _relative_name(rendition, url)}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def curl_command(config: Path, jobs: int) -> list[str]:
    return [
        "curl", "--parallel", "--parallel-max", str(jobs), "--create-dirs", "--fail", "--silent",
        "--show-error", "--noproxy", "*", "--config", str(config),
    ]  # fmt: skip


def bytes_under(directory: Path, suffixes: tuple[str, ...] = (".ts",)) -> tuple[int, int]:
    """(files, bytes) of the files with these suffixes below `directory`."""
    count = size = 0
    for path in directory.rglob("*"):
        if path.is_file() and path.suffix in suffixes:
            count += 1
            size += path.stat().st_size
    return count, size


def sync_time(directory: Path) -> float:
    """Seconds to make the files below `directory` durable: syncfs(2) of its file system (`sync -f`)."""
    start = time.perf_counter()
    subprocess.run(["sync", "-f", str(directory)], check=True)
    return time.perf_counter() - start


def run_aria2c(urls: Sequence[tuple[str, str]], work: Path, jobs: int) -> tuple[Measured, int, int]:
    """Download every URL with aria2c; (measurement, files, bytes)."""
    out = work / "aria2c"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    input_file = write_aria2_input(work / "aria2c-urls.txt", urls)
    measured = run_measured(aria2c_command(input_file, out, jobs), env=local_env())
    measured = replace(measured, sync_seconds=sync_time(out))
    files, size = bytes_under(out)
    shutil.rmtree(out, ignore_errors=True)
    return measured, files, size


def run_curl(urls: Sequence[tuple[str, str]], work: Path, jobs: int) -> tuple[Measured, int, int]:
    out = work / "curl"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = write_curl_config(work / "curl-urls.cfg", urls, out)
    measured = run_measured(curl_command(config, jobs), env=local_env())
    measured = replace(measured, sync_seconds=sync_time(out))
    files, size = bytes_under(out)
    shutil.rmtree(out, ignore_errors=True)
    return measured, files, size
