# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install everything they need (Debian packages, a venv, pip packages) and are safe to re-run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
DEBS   := ffmpeg aria2

# A python3.10 that actually runs (a pyenv shim without that version selected does not).
PY310  ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do \
            "$$p" -c 'import sys' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

.PHONY: demo test test-py310 lint typecheck unit bench dashboard layer install system-deps clean

demo: install
	$(BIN)/harvest demo

test: install lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# SCF runs Python 3.10: the unit suite also runs there when this machine has a python3.10.
test-py310: system-deps
	@if [ -z "$(PY310)" ]; then echo "test-py310: no python3.10 here, skipped"; else \
	  [ -x .venv310/bin/python ] || $(PY310) -m venv .venv310; \
	  .venv310/bin/pip install -q -e '.[test]' && .venv310/bin/python -m pytest -q -p no:cacheprovider tests/unit; fi

lint: install
	$(BIN)/ruff check shared tests functions bench

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# docs/dashboard.png: the Grafana dashboard's panels over a real run's scraped /metrics (matplotlib).
dashboard: install
	$(BIN)/pip install -q -e '.[docs]'
	$(BIN)/python -m bench.dashboard record
	$(BIN)/python -m bench.dashboard render

# The SCF layer (shared/ plus its dependencies) for serverless.yml: build/layer.zip.
layer: install
	$(BIN)/python packaging/build_layer.py

install: system-deps $(STAMP)

# ffmpeg makes and checks the test media; aria2c is the raw-download baseline of the benchmark.
system-deps:
	@missing=""; for tool in ffmpeg ffprobe aria2c; do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $(DEBS)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .harvest .pytest_cache .mypy_cache .ruff_cache tests/.media
