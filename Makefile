# notifyplatform — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint format venv bench clean stop browser tts

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

## tts: Debian's espeak-ng, the speech engine news narrations are recorded with (and
##      the narration tests listen to)
tts:
	@test -x /usr/bin/espeak-ng || { \
	  echo "installing Debian's espeak-ng for news narrations"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; }

## test: lint, then the whole pytest suite against real PostgreSQL and Redis
test: venv lint browser tts
	$(PY) -m notifyplatform.launcher test -- -n 2 --dist loadgroup $(PYTEST_ARGS)

## bench: the benchmark table (figures next to this machine's raw limits); not a test
bench: venv
	$(PY) bench/run.py $(BENCH_ARGS)

## lint: ruff, the import contracts of .importlinter (layers, no cycles, no app importing
##       another's api/admin) and mypy (pyproject.toml; strict on services, selectors, adapters);
##       any failure is a red lint, and so a red `make test`
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	SECRET_KEY=$${SECRET_KEY:-lint-only} $(VENV)/bin/mypy .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

stop: venv
	$(PY) -m notifyplatform.launcher stop

clean: stop
	rm -rf .run staticfiles .pytest_cache
