# The two commands of the README's quick start:
#   make demo   set up a virtual environment, create ./instance with the DEMO app and provider, serve it
#   make test   set up the same environment and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTANCE ?= instance

.PHONY: demo test test-future mutation check xmlsec1 translations

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,server,deploy]"
	touch $@

# The xmlsec1 program: pysaml2 uses it for XML encryption, and the tests cross-check the broker's
# in-process signatures with it. Installed from the distribution when missing.
xmlsec1:
	@command -v xmlsec1 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq xmlsec1; }

demo: $(BIN)/.installed xmlsec1
	test -f $(INSTANCE)/broker.toml || $(BIN)/broker init --demo $(INSTANCE)
	$(BIN)/broker --config $(INSTANCE)/broker.toml run

test: $(BIN)/.installed xmlsec1
	$(BIN)/pytest -n auto

# The suite with the clock two years ahead (Debian's faketime; tests/faketime/sitecustomize.py says why
# the monotonic clock stays real), on SQLite: PostgreSQL's and Redis's servers keep the real time. A test that
# depends on today's date fails here on the day it is written, not two years later. It runs the layers where
# times are computed and checked (core, journeys, storage, registry, adapters, analytics, CLI, config); the
# end-to-end suites (tests/flows, tests/security) drive those same layers through real peers and take most
# of the suite's time, so they run at today's date only (CI stays within its time budget). tests/browser is left
# out too: Chromium does not run under libfaketime, and those tests look at pages, not dates.
test-future: $(BIN)/.installed xmlsec1
	@command -v faketime >/dev/null 2>&1 || { echo "faketime is missing: apt-get install faketime" >&2; exit 1; }
	env -u BROKER_TEST_DATABASE_URL -u BROKER_TEST_REDIS_URL PYTHONPATH=tests/faketime \
	  FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -m -f +730d $(BIN)/pytest -n auto -p no:cacheprovider \
	  --ignore=tests/browser --ignore=tests/flows --ignore=tests/security

# Each security defence listed in tests/mutation/defences_*.py is removed in turn, in a throwaway copy of the
# repository, and its named tests must fail (docs/security.md); one whose tests still pass fails the run.
mutation: $(BIN)/.installed xmlsec1
	$(BIN)/python -m tests.mutation.run --jobs 2

check: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

# The catalogues of broker/translations (tests/test_translations.py checks all three steps were run): extract every
# _(), gettext and N_ string of the code and templates (babel.cfg) into messages.pot, merge new and changed ones into
# each language's messages.po (new ones untranslated, never guessed from a similar string), compile the .mo files.
translations:  # needs only pybabel (Flask-Babel brings it), so no reinstall
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o broker/translations/messages.pot .
	$(BIN)/pybabel update -i broker/translations/messages.pot -d broker/translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d broker/translations --statistics
