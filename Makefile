# The two commands of the setup contract: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-pg lint bench install clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("ebr needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/ebr up

# Two passes: the whole suite on SQLite, then every test that opened a record store again,
# each on a fresh PostgreSQL database on 127.0.0.1:5432 (skipped, saying why, without a
# server). Exit code 5 of the second pass = nothing to re-run. See docs/production.md.
test: $(STAMP)
	$(BIN)/python -m pytest; sqlite=$$?; \
	echo "== PostgreSQL pass: the tests that use the record store, on PostgreSQL =="; \
	EBR_TEST_DATABASE=postgresql $(BIN)/python -m pytest; pg=$$?; \
	[ $$sqlite -eq 0 ] && { [ $$pg -eq 0 ] || [ $$pg -eq 5 ]; }

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest

test-pg: $(STAMP)
	EBR_TEST_DATABASE=postgresql $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info
