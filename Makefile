# Both targets build .venv from nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test browser bench bench-gpu audit scorecard lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv || echo "make: uv not installed: pip installs instead (slower)"

# INSTALL: uv installs the dev extras (torch, lightning, transformers, ...) in about 70 s
# where pip took 130 s of the 10-minute `make test` (parallel downloads, unpacking and
# bytecode compiling; the bytecode matters: without it every test process compiles
# torch again when PYTHONDONTWRITEBYTECODE is set). uv does not read pip's
# configuration, so what this machine gives pip (its find-links, extra indexes and
# constraints, from the environment or pip.conf) is handed to it; pip installs when uv
# is missing or fails.
comma := ,
define INSTALL
cfg() { $(BIN)/python -m pip config get "$$1" 2>/dev/null || true; }; \
v=$${PIP_FIND_LINKS:-$$(cfg global.find-links)}; [ -z "$$v" ] || export UV_FIND_LINKS="$$v"; \
v=$${PIP_EXTRA_INDEX_URL:-$$(cfg global.extra-index-url)}; [ -z "$$v" ] || export UV_EXTRA_INDEX_URL="$$v"; \
v=$${PIP_CONSTRAINT:-$$(cfg global.constraint)}; [ -z "$$v" ] || export UV_CONSTRAINT="$$v"; \
export UV_INDEX_STRATEGY=unsafe-best-match UV_COMPILE_BYTECODE=1; \
{ [ -x $(BIN)/uv ] && $(BIN)/uv pip install -q --python $(BIN)/python -e '.[$(1)]'; } \
  || $(BIN)/python -m pip install -q -e '.[$(1)]'
endef

$(VENV)/.demo: pyproject.toml $(BIN)/python
	@$(call INSTALL,demo)
	touch $@

$(VENV)/.dev: pyproject.toml $(BIN)/python
	@$(call INSTALL,dev$(comma)demo)
	touch $@

# The peers of bench_peers.py (trackio, tensorboardX, mlflow, dvclive): only `make bench`
# installs them; `make test` does not need them.
$(VENV)/.bench: pyproject.toml $(BIN)/python
	@$(call INSTALL,dev$(comma)demo$(comma)bench)
	touch $@ $(VENV)/.dev

demo: $(VENV)/.demo
	$(BIN)/steadyrun demo

# --dist loadgroup: the browser tests (one server, one chromium per module) stay on one
# worker, and so do the multi-process (torchrun, DDP) tests of each xdist_group.
# -n 3 on 2 cores: many tests wait on subprocesses (wandb-core, sidecars, torchrun), so a
# third worker fills that time; measured 482 s for the suite (826 CPU-seconds).
# Tests marked `alone` (the CPU-heavy benchmark smoke runs) go in a second pass, two at a
# time, so that they never run beside tests that time a call or wait on a deadline.
test: lint browser
	$(BIN)/python -m pip check  # the offline part of the dependency audit (see make audit)
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup --durations=15 -m "not soak and not alone" tests
	$(BIN)/python -m pytest -q -n 2 --durations=5 -m "alone and not soak" tests

# The browser tests (tests/ui) drive Debian's chromium through playwright (never a
# browser download). Installed here when missing and we are root; otherwise a notice:
# the tests are then skipped with a warning, and fail under CI=true.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing chromium for the browser tests (tests/ui)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; } \
	    || echo "make: NOTICE: chromium could not be installed: the browser tests will be skipped" \
	            "(under CI=true they fail)"; \
	else \
	  echo "make: NOTICE: chromium is not installed and this is not root: the browser tests" \
	       "(tests/ui) will be skipped (under CI=true they fail). Install it: sudo apt-get install chromium"; \
	fi

# ruff, and the import-linter contracts of pyproject.toml: a layer importing one above it,
# a cycle between sibling modules, or wandb/torch/numpy on the import path fails here.
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/run_all.py

# The GPU rows (g3: step time and utilisation with deferred tensors) on a machine with a
# CUDA GPU, as one command of under 5 minutes; merged into benchmarks/results/ beside the
# other sections' rows (each row names the commit it was measured at).
bench-gpu: $(VENV)/.dev
	timeout 300 $(BIN)/python benchmarks/run_all.py --only g --merge

# Dependency audit: needs the network (PyPI's JSON API or OSV); --strict fails when a
# dependency could not be audited, so an unreachable service never passes silently.
audit: $(VENV)/.dev
	$(BIN)/python -m pip install -q pip-audit
	$(BIN)/pip-audit --strict --desc -l

# docs/reliability.md's scorecard, measured (raw wandb first, then the fault suite with
# its full-size soaks, ~25 min on 2 cores): one run is the whole table, stamped with the
# commit; it fails, and publishes nothing, when a case fails.
scorecard: $(VENV)/.dev
	$(BIN)/python benchmarks/raw_wandb_faults.py
	$(BIN)/python tests/faults/make_scorecard.py --soak

clean:
	rm -rf $(VENV) steadyrun wandb
