# Everything a newcomer needs: `make run` and `make test` set up .venv on their own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format bench bench-quick soak clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing pinned dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(JS_STAMP): tests/js/package.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "==> installing the JS interop test peer (@automerge/automerge)"; \
		cd tests/js && npm install --silent --no-audit --no-fund && touch node_modules/.installed; \
	else echo "npm not found: JS interop tests will fail"; exit 1; fi

run: $(STAMP)
	$(VENV)/bin/runtimed serve $(RUN_ARGS)

test: $(STAMP) $(JS_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) scripts/bench.py $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(PY) scripts/bench.py --quick

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache .ruff_cache
