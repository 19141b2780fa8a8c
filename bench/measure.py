"""Time, peak memory and CPU of a process tree, read from /proc (Linux; no psutil).

Peak RSS comes from two sources and the larger wins:
- a sampler thread that sums VmRSS over the process and all its descendants every 10 ms (the
  only way to see the tree's peak when several processes are alive together), and
- the kernel's own high-water mark of each process (VmHWM), read at every sample: it only grows,
  so the last read before exit misses at most the last 10 ms of a process's life.

`ru_maxrss` from wait4() is NOT used: Linux carries the parent's RSS into it at exec (subprocess
forks or vforks from this Python process), so every child would look at least as big as the
benchmark process itself.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                kids += [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children(current)
    return pids


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def hwm_bytes(pid: int) -> int:
    """The kernel's peak-RSS mark of a live process (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of live processes (threads included)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            continue
    return total / TICKS


class TreeSampler:
    """Samples the summed RSS of one or more process trees until stopped."""

    def __init__(self, roots: Sequence[int], interval: float = 0.01) -> None:
        self._roots = list(roots)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = 0  # bytes: the largest summed RSS seen
        self.hwm: dict[int, int] = {}  # pid -> the largest VmHWM seen
        self.samples = 0

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sample(self) -> int:
        rss = 0
        for root in self._roots:
            for pid in tree(root):
                rss += rss_bytes(pid)
                self.hwm[pid] = max(self.hwm.get(pid, 0), hwm_bytes(pid))
        self.peak = max(self.peak, rss)
        self.samples += 1
        return rss

    @property
    def best_peak(self) -> int:
        """The tree's peak: summed samples, or one process's own high-water mark if that is larger."""
        return max(self.peak, max(self.hwm.values(), default=0))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.sample()


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss: int  # bytes
    cpu_seconds: float
    returncode: int
    stderr: str
    # A raw tool's files made durable after it exited (syncfs of their file system), timed apart:
    # harvest's Completed includes that (its chunks sync before they are recorded), curl's exit not.
    sync_seconds: float = 0.0


def wait_exit(pid: int, timeout: float | None = None) -> tuple[int, resource.struct_rusage] | None:
    """wait4() the child: (exit code, rusage), or None if it is still running after `timeout`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        waited, status, usage = os.wait4(pid, 0 if deadline is None else os.WNOHANG)
        if waited == pid:
            return os.waitstatus_to_exitcode(status), usage
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(0.01)


class _Child:
    """A started command whose stderr is drained in a thread (a full pipe would stall the child)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None, cwd: Path | None) -> None:
        self.proc = subprocess.Popen(
            list(args), env=dict(env) if env is not None else None, cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._chunks: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        if self.proc.stderr is not None:
            self._chunks.append(self.proc.stderr.read())

    def reap(self, timeout: float) -> tuple[int, float, str]:
        """Wait for exit (killing it after `timeout`): exit code, CPU seconds, stderr tail."""
        result = wait_exit(self.proc.pid, timeout)
        if result is None:
            self.proc.send_signal(signal.SIGKILL)
            result = wait_exit(self.proc.pid)
        assert result is not None
        code, usage = result
        self.proc.returncode = code  # already reaped by wait4
        self._reader.join()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code, usage.ru_utime + usage.ru_stime, "".join(self._chunks)[-4000:]


def run_measured(
    args: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 3600
) -> Measured:
    """Run a command to completion; its wall time, peak tree RSS and CPU time."""
    return run_many_measured([args], env, cwd=cwd, timeout=timeout)


def run_many_measured(
    commands: Sequence[Sequence[str]],
    env: Mapping[str, str] | None = None,
    parallel: bool = False,
    cwd: Path | None = None,
    timeout: float = 3600,
) -> Measured:
    """Run commands one after another (or all at once): total time, peak summed RSS, summed CPU.

    Sequential runs report the largest single peak; parallel runs the peak of all trees together.
    """
    batches = [list(commands)] if parallel else [[c] for c in commands]
    peak, cpu, code, stderr = 0, 0.0, 0, ""
    start = time.perf_counter()
    for batch in batches:
        started = [_Child(c, env, cwd) for c in batch]
        with TreeSampler([child.proc.pid for child in started]) as sampler:
            reaped = [child.reap(timeout) for child in started]
        peak = max(peak, sampler.best_peak)
        cpu += sum(r[1] for r in reaped)
        failed = next((r for r in reaped if r[0] != 0), None)
        if failed is not None and code == 0:
            code, stderr = failed[0], failed[2]
    return Measured(time.perf_counter() - start, peak, cpu, code, stderr)
