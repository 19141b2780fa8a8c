"""A private PostgreSQL cluster for tests that must crash their database.

The machine's PostgreSQL on 5432 is shared with other test runs and must never be stopped, so a
test that crashes PostgreSQL starts its own: `initdb` in a temp dir, `pg_ctl start` on a free port
(loopback only, trust authentication), and `crash()` is `pg_ctl stop -m immediate`, which kills the
server without a checkpoint, as a power cut or a failover would. initdb refuses to run as root, so
as root the binaries run as the `postgres` user.

Take the `private_postgres` fixture; it skips, saying why, when the binaries or the user are missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")
RUN_AS = "postgres"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl."""
    if not PG_ROOT.is_dir():
        return None
    found = [path / "bin" for path in PG_ROOT.iterdir() if (path / "bin" / "initdb").is_file()]
    found = [path for path in found if (path / "pg_ctl").is_file()]
    return max(found, key=lambda path: [int(p) for p in path.parent.name.split(".") if p.isdigit()] or [0],
               default=None)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateCluster:
    bin_dir: Path
    root: Path  # the temp dir: data/, the socket and the server log
    port: int
    run_as: str | None  # None: as this (unprivileged) user

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-o", options)

    def crash(self) -> None:
        """Immediate shutdown: every backend killed, no checkpoint; the next start runs crash recovery."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def running(self) -> bool:
        command = [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A started private cluster on a free port, stopped and removed afterwards."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL server binaries (initdb, pg_ctl) under {PG_ROOT}: install postgresql")
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(RUN_AS)
        except KeyError:
            pytest.skip(f"running as root and there is no {RUN_AS!r} user to run initdb as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser(1) is missing")
        run_as = RUN_AS
    root = Path(tempfile.mkdtemp(prefix="harvest-pg-"))
    if run_as is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = PrivateCluster(bin_dir, root, free_port(), run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
