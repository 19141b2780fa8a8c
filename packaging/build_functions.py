"""Stage each SCF function's code folder: build/functions/<name>/ holding index.py and channels.yaml.

    python packaging/build_functions.py [--channels channels.yaml] [--out build/functions]

serverless.yml points each function's `src` at its folder here; the deploy zips that folder, so its
contents are the root of the function's code, which SCF unzips into /var/user (the entry file must be
at the root, 583/40324). The channel registry rides along in every function: each one reads it
(HARVEST_CHANNELS=/var/user/channels.yaml), and a new registry is a redeploy of the code.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("api", "worker", "finalizer", "live_event_end", "sweeper")
REGISTRY_NAME = "channels.yaml"


def stage(out: Path, channels: Path) -> list[Path]:
    """Write out/<name>/{index.py, channels.yaml} for every function; returns the folders."""
    if not channels.is_file():
        raise SystemExit(f"no channel registry at {channels}: every function ships one (see README)")
    folders = []
    for name in FUNCTIONS:
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copyfile(ROOT / "functions" / name / "index.py", folder / "index.py")
        shutil.copyfile(channels, folder / REGISTRY_NAME)
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=Path, default=ROOT / REGISTRY_NAME)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "functions")
    args = parser.parse_args(argv)
    for folder in stage(args.out, args.channels):
        print(f"{folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
