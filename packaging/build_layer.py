"""Build build/layer.zip: the SCF layer holding the harvest package and its dependencies.

SCF unpacks layers under /opt and puts /opt on PYTHONPATH, so packages sit at the zip root.
Wheels are fetched for SCF's runtime (Python 3.10, manylinux x86_64), whatever this machine runs.
The Tencent SDK ships every cloud product (~240 MB); only the products we call are kept, which
brings the layer far under SCF's 500 MB limit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "layer"
ZIP = ROOT / "build" / "layer.zip"
KEEP_PRODUCTS = {"common", "mdp", "ckafka", "__init__.py"}
SOURCE_ONLY = ["cos-python-sdk-v5==1.9.44", "crcmod"]
RUNTIME = ["--python-version", "3.10", "--platform", "manylinux2014_x86_64", "--only-binary=:all:"]


def main() -> int:
    shutil.rmtree(BUILD, ignore_errors=True)
    BUILD.mkdir(parents=True)
    # Dependencies as binary wheels for SCF's Python; then the ones published only as source, which
    # are pure Python there (crcmod falls back to its pure-Python CRC when its C module is absent);
    # then our own package.
    pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(BUILD)]
    subprocess.run([*pip, *RUNTIME, "-r", str(ROOT / "packaging" / "layer-requirements.txt")], check=True)
    subprocess.run([*pip, "--no-deps", "--no-binary", "crcmod", *SOURCE_ONLY], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(BUILD), str(ROOT)],
        check=True,
    )
    sdk = BUILD / "tencentcloud"
    for product in sdk.iterdir():
        if product.name not in KEEP_PRODUCTS:
            shutil.rmtree(product) if product.is_dir() else product.unlink()
    for cache in BUILD.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    with zipfile.ZipFile(ZIP, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(BUILD.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(BUILD))
    size = sum(p.stat().st_size for p in BUILD.rglob("*") if p.is_file())
    print(f"{ZIP}: {ZIP.stat().st_size / 1e6:.1f} MB zipped, {size / 1e6:.1f} MB unpacked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
