# coachbot — `make demo` to see it work, `make test` to check everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test lint typecheck imports migrations pytest bench demo clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "coachbot needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: lint typecheck imports migrations pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy bot content scheduler storage insights tests benchmarks

imports: $(STAMP)
	$(BIN)/lint-imports

# The models and the migrations must agree: upgrade a scratch SQLite file, then ask Alembic for drift.
migrations: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	DATABASE_URL="sqlite:///$$tmp/check.db" $(BIN)/alembic upgrade head >/dev/null 2>&1 && \
	DATABASE_URL="sqlite:///$$tmp/check.db" $(BIN)/alembic check

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	@set -e; found=0; for script in benchmarks/bench_*.py; do \
		[ -e "$$script" ] || continue; found=1; echo "== $$script"; $(BIN)/python "$$script"; done; \
	[ $$found -eq 1 ] || echo "no benchmarks yet"

demo: $(STAMP)
	$(BIN)/coachbot demo

clean:
	rm -rf $(VENV) demo-out .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
