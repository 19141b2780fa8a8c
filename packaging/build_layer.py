"""Build the SCF layer `harvest-shared`: the code the five functions import, and nothing else.

    python packaging/build_layer.py [--out build/layer.zip] [--python-version 3.10]

What goes in:
- the harvest package without the parts only a developer's machine runs (LOCAL_ONLY: the local
  stack, the CLI, the test/demo origin and its media tools); the build fails if a shipped module
  imports one of them;
- the runtime dependencies, read from pyproject.toml's [project] dependencies (tools that only the
  local parts need live in the `local` extra and stay out), as wheels for SCF's runtime (Python 3.10,
  manylinux x86_64) whatever this machine runs;
- of the Tencent SDK, which ships every cloud product (~240 MB), only `common` and `ckafka`.

SCF unzips layers into /opt and puts /opt on PYTHONPATH (583/37039), so packages sit at the zip root.
Prints the zipped and unzipped sizes (SCF's limit: 500 MB unzipped, code and layers together).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip carries the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "shared" / "harvest"
LOCAL_ONLY = ("devtools", "local", "cli")
KEEP_SDK_PRODUCTS = {"common", "ckafka", "__init__.py"}
# Published only as source distributions; both are pure Python on SCF (crcmod falls back to its
# pure-Python CRC when its C module is absent), so they are installed from source, without deps.
SOURCE_ONLY = ("cos-python-sdk-v5", "crcmod")
PLATFORM = "manylinux2014_x86_64"
# Published as wheels for a newer glibc only (pycurl bundles libcurl and OpenSSL built on
# manylinux_2_28). Installed apart, so no other package is moved to a newer glibc: on an image
# older than that the import fails and HttpOrigin falls back to requests, logging it once.
OWN_PLATFORM = {"pycurl": "manylinux_2_28_x86_64"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """[project] dependencies of pyproject.toml: what the functions import, pinned as there."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def _split(requirements: list[str]) -> tuple[list[str], list[str]]:
    """(wheels, sources): source-only packages apart, their own dependencies added to the wheels."""
    wheels, sources = [], []
    for requirement in requirements:
        if _name(requirement) not in SOURCE_ONLY:
            wheels.append(requirement)
            continue
        sources.append(requirement)
        # Their dependencies as this environment's installed copy declares them (same pinned version).
        for dependency in metadata.requires(_name(requirement)) or []:
            if ";" in dependency:
                continue  # extras and markers: none apply to the runtime install
            (sources if _name(dependency) in SOURCE_ONLY else wheels).append(dependency)
    return wheels, sources


def _missing_for_target(target: Path, python_version: str) -> list[str]:
    """Dependencies the installed wheels declare for the *target* Python that pip left out.

    pip's --python-version picks wheels for the target but evaluates markers for the Python running
    it: m3u8 needs `backports-datetime-fromisoformat; python_version < "3.11"` on SCF's 3.10, which a
    build on 3.11 would silently drop (and `fromisoformat('...Z')` then fails on SCF).
    """
    environment = {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "extra": "",
    }
    installed = {_name(path.name.split("-")[0]) for path in target.glob("*.dist-info") if path.is_dir()}
    missing = []
    for dist in metadata.distributions(path=[str(target)]):
        for raw in dist.requires or []:
            requirement = Requirement(raw)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            if _name(requirement.name) not in installed:
                missing.append(str(requirement).split(";")[0].strip())
    return sorted(set(missing))


def _copy_package(target: Path) -> list[Path]:
    """Copy the package into the layer; returns the Python modules (the console's built static files
    go too: the api function serves them at /console/ through its function URL)."""
    shipped = []
    for path in sorted(PACKAGE.rglob("*")):
        relative = path.relative_to(PACKAGE)
        if path.is_dir() or relative.parts[0] in LOCAL_ONLY or "__pycache__" in relative.parts:
            continue
        if path.suffix == ".pyc":
            continue
        destination = target / "harvest" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        if path.suffix == ".py":
            shipped.append(destination)
    if not (target / "harvest" / "console" / "static" / "index.html").is_file():
        raise SystemExit("the console is not built (shared/harvest/console/static): run `make console` first")
    return shipped


def _check_imports(shipped: list[Path], target: Path) -> None:
    """No shipped module may import what the layer leaves out."""
    banned = tuple(f"harvest.{name}" for name in LOCAL_ONLY)
    for path in shipped:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "cryptography" or name.startswith(banned):
                    raise SystemExit(f"{path.relative_to(target)} imports {name}, which the layer leaves out")


def build(out: Path, python_version: str = "3.10") -> tuple[int, int]:
    """Build the layer zip at `out`; returns (zipped bytes, unzipped bytes)."""
    with tempfile.TemporaryDirectory(prefix="harvest-layer-") as scratch:
        target = Path(scratch) / "layer"
        wheels, sources = _split(runtime_requirements())
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target"]
        runtime = ["--python-version", python_version, "--platform", PLATFORM, "--only-binary=:all:"]
        own = [w for w in wheels if _name(w) in OWN_PLATFORM]
        wheels = [w for w in wheels if _name(w) not in OWN_PLATFORM]
        subprocess.run([*pip, str(target), *runtime, *wheels], check=True)
        for requirement in own:
            platform = ["--python-version", python_version, "--platform", OWN_PLATFORM[_name(requirement)]]
            subprocess.run(
                [*pip, str(target), *platform, "--only-binary=:all:", "--no-deps", requirement], check=True
            )
        no_binary = ["--no-binary", ",".join(_name(s) for s in sources)]
        subprocess.run([*pip, str(target), "--no-deps", *no_binary, *sources], check=True)
        while missing := _missing_for_target(target, python_version):
            subprocess.run([*pip, str(target), *runtime, *missing], check=True)
        sdk = target / "tencentcloud"
        for product in sdk.iterdir():
            if product.name not in KEEP_SDK_PRODUCTS:
                shutil.rmtree(product) if product.is_dir() else product.unlink()
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing runs them on SCF
        shutil.rmtree(target / "Crypto" / "SelfTest", ignore_errors=True)  # pycryptodome's own tests
        _check_imports(_copy_package(target), target)
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)
        files = sorted(path for path in target.rglob("*") if path.is_file())
        out.parent.mkdir(parents=True, exist_ok=True)
        # Unique per process: two builds of the same `out` at once (parallel test workers) each
        # replace it whole.
        partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(target).as_posix())
        partial.replace(out)
        return out.stat().st_size, sum(path.stat().st_size for path in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "layer.zip")
    parser.add_argument("--python-version", default="3.10", help="SCF runtime the wheels are for")
    args = parser.parse_args(argv)
    zipped, unzipped = build(args.out, args.python_version)
    print(f"{args.out}: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
