# notifyplatform — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint format venv bench clean stop browser

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## run: start PostgreSQL/Redis (configured, local or embedded), migrate, load demo data,
##      and run daphne + a Celery worker + Celery beat + the provider sandbox
run: venv
	$(PY) -m notifyplatform.launcher run

## browser: Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium;
##          it never downloads a browser of its own)
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

## test: lint, then the whole pytest suite against real PostgreSQL and Redis
test: venv lint browser
	$(PY) -m notifyplatform.launcher test -- -n 2 --dist loadgroup $(PYTEST_ARGS)

## bench: the benchmark table (figures next to this machine's raw limits); not a test
bench: venv
	$(PY) bench/run.py $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

stop: venv
	$(PY) -m notifyplatform.launcher stop

clean: stop
	rm -rf .run staticfiles .pytest_cache
