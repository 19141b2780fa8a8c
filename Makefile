# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install everything they need (Debian packages, a venv, pip packages) and are safe to re-run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
DEBS   := ffmpeg aria2 chromium nginx
CONSOLE_OUT := shared/harvest/console/static/index.html
CONSOLE_SRC := $(wildcard console/src/*) console/build.mjs console/package-lock.json

# A python3.10 that actually runs (a pyenv shim without that version selected does not).
PY310  ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do \
            "$$p" -c 'import sys' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

.PHONY: demo test test-py310 lint typecheck unit bench dashboard layer functions deploy toolkit-crosscheck install system-deps console clean

demo: install
	$(BIN)/harvest demo

test: install lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# SCF runs Python 3.10: the unit suite also runs there when this machine has a python3.10.
test-py310: system-deps
	@if [ -z "$(PY310)" ]; then echo "test-py310: no python3.10 here, skipped"; else \
	  [ -x .venv310/bin/python ] || $(PY310) -m venv .venv310; \
	  .venv310/bin/pip install -q -e '.[local,serve,test]' && .venv310/bin/python -m pytest -q -p no:cacheprovider tests/unit; fi

# The quick loop while working: the unit tests only (no media, servers or browser).
unit: install
	$(BIN)/python -m pytest -q -n 2 tests/unit

lint: install
	$(BIN)/ruff check shared tests functions bench packaging

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# docs/dashboard.png: the Grafana dashboard's panels over a real run's scraped /metrics (matplotlib).
dashboard: install
	$(BIN)/pip install -q -e '.[docs]'
	$(BIN)/python -m bench.dashboard record
	$(BIN)/python -m bench.dashboard render

# The SCF layer harvest-shared (what the functions import, from pyproject.toml): build/layer.zip.
layer: install
	$(BIN)/python packaging/build_layer.py

# Each function's code folder for serverless.yml (index.py + channels.yaml): build/functions/<name>/.
functions: install
	$(BIN)/python packaging/build_functions.py $(if $(CHANNELS),--channels $(CHANNELS))

# Publish the layer and create or update the functions and triggers of serverless.yml (see README).
deploy: layer functions
	$(BIN)/python packaging/deploy.py $(DEPLOY_ARGS)

# packaging/scf_requests.py against the real tencent-component-toolkit (needs node and npm).
toolkit-crosscheck: install
	npm install --prefix build/toolkit --no-audit --no-fund --silent tencent-component-toolkit@2.27.6
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/deploy/test_toolkit_crosscheck.py

install: system-deps $(STAMP) $(CONSOLE_OUT)

# ffmpeg makes and checks the test media; aria2c is the raw-download baseline of the benchmark;
# chromium runs the console's browser tests; nginx is the reverse proxy of the HTTPS tests (run
# unprivileged from a temp dir, never as a service); node and npm build the console (Debian's, if
# the machine has none of its own).
system-deps:
	@debs=""; for tool in ffmpeg ffprobe aria2c chromium; do command -v $$tool >/dev/null || debs="$(DEBS)"; done; \
	[ -x /usr/sbin/nginx ] || debs="$(DEBS)"; \
	command -v npm >/dev/null || debs="$$debs nodejs npm"; \
	if [ -n "$$debs" ]; then \
	  echo "installing Debian packages: $$debs"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$debs >/dev/null; \
	fi

# The console's static files: hls.js and esbuild at the versions package-lock.json pins (npm ci),
# bundled by console/build.mjs into the package (same inputs, same bytes). Not committed.
console: $(CONSOLE_OUT)

$(CONSOLE_OUT): $(CONSOLE_SRC) console/package.json
	cd console && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[local,serve,test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .harvest .pytest_cache .mypy_cache .ruff_cache tests/.media build console/node_modules shared/harvest/console/static
