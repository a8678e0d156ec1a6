# make run  : create .venv, install nas-hpo with its test extra, run the quickstart study
# make test : create .venv if needed, run the whole test suite (the quickstart study included)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# The dashboard test drives Debian's headless Chromium; `make test` installs it when missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint clean gpu-wheels

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nas-hpo run studies/quickstart.toml

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest

# Everything but the tests marked slow (the full quickstart study), for quick iterations.
test-fast: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check nas_hpo spaces objectives tests benchmarks

# Wheels of the packages nas-hpo imports that a bare PyTorch GPU image lacks (CPython 3.12,
# x86-64), for benchmarks/gpu_checks.sh; the same versions as this checkout's .venv; and
# nas-hpo's own wheel, built from this checkout (its package layout maps spaces/ and
# objectives/ into nas_hpo: it does not run from a bare checkout). Run again after a change.
gpu-wheels: $(STAMP)
	rm -f .whl/nas_hpo-*.whl
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w .whl .
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux2014_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d .whl \
	  "optuna==$$($(PY) -c 'import optuna; print(optuna.__version__)')" \
	  "colorlog==$$($(PY) -m pip show colorlog | sed -n 's/^Version: //p')" \
	  "SQLAlchemy==$$($(PY) -m pip show SQLAlchemy | sed -n 's/^Version: //p')" \
	  "alembic==$$($(PY) -m pip show alembic | sed -n 's/^Version: //p')" \
	  "Mako==$$($(PY) -m pip show Mako | sed -n 's/^Version: //p')"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis nas_hpo.db nas_hpo.db.nas-hpo.lock test-artifacts
