# The two commands: `make run` starts the platform, `make test` proves it.
# Both create .venv on first use; with DATABASE_URL/REDIS_URL unset they run on embedded
# PostgreSQL (with pgvector) and Redis whose data lives under var/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint check clean-var chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e ./client
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed chromium
	$(BIN)/python manage.py runplatform

test: $(VENV)/.installed-dev chromium
	$(BIN)/pytest $(PYTEST_ARGS)

# The browser the web agent drives: the system's (Playwright cannot fetch its own here).
chromium:
	@sh scripts/ensure-chromium

# mypy type-checks the core ([tool.mypy] in pyproject.toml); its django-stubs plugin imports the
# settings, which only parse these URLs: no embedded server starts for a type check.
TYPECHECK_ENV := DATABASE_URL=postgres://typecheck@127.0.0.1:1/typecheck \
	REDIS_URL=redis://127.0.0.1:1/0

# The tooling gate, the same locally and in CI (STYLE §14).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(TYPECHECK_ENV) $(BIN)/mypy
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run

check: lint test

clean-var:
	$(BIN)/python -c "from rcm import embedded; embedded.stop()"
	rm -rf var
