# Everything a newcomer needs: `make run` and `make test` set up .venv on their own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed
WEB_STAMP := js/node_modules/.installed
WEB_BUNDLE := runtimed/web/dist/app.js
# Jupyter Enterprise Gateway (tests/remote_gateway, the bench's gateway case) needs
# jupyter_server<2 and jupyter_client<7: it gets a venv of its own.
EG_VENV := .venv-eg
EG_STAMP := $(EG_VENV)/.installed
EG_REQUIREMENTS := tests/remote_gateway/enterprise-gateway.txt
CHROMIUM := /usr/bin/chromium
SSHD := /usr/sbin/sshd
WS_ADDRESS ?= 127.0.0.1:8765
PYTEST_ARGS ?=

.PHONY: run test lint format bench bench-quick soak clean install web browser enterprise-gateway sshd

install: $(STAMP)

# rfc3987-syntax comes only with the dev tools (jupyter_server's jupyter_events asks for
# jsonschema[format-nongpl]) and builds ~30 Earley parsers when jsonschema is imported:
# 3-6 s in every process that imports nbformat (each daemon a test starts). Nothing here
# checks IRI formats, and jsonschema goes on without it, as a plain install has it.
$(STAMP): pyproject.toml Makefile
	@echo "==> creating $(VENV) and installing pinned dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(PY) -m pip uninstall --quiet --disable-pip-version-check -y rfc3987-syntax
	@touch $(STAMP)

$(EG_STAMP): $(EG_REQUIREMENTS)
	@echo "==> creating $(EG_VENV) with Jupyter Enterprise Gateway (pinned)"
	@test -x $(EG_VENV)/bin/python || $(PYTHON) -m venv $(EG_VENV)
	@$(EG_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(EG_REQUIREMENTS)
	@touch $(EG_STAMP)

enterprise-gateway: $(EG_STAMP)

$(JS_STAMP): tests/js/package.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "==> installing the JS interop test peer (@automerge/automerge)"; \
		cd tests/js && npm install --silent --no-audit --no-fund && touch node_modules/.installed; \
	else echo "npm not found: JS interop tests will fail"; exit 1; fi

# The JS client and the notebook page: npm ci from the lockfile, then one esbuild run.
$(WEB_STAMP): js/package.json js/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: the notebook page cannot be built"; exit 1; }
	@echo "==> installing the JS client's dependencies (js/)"
	@cd js && npm ci --silent --no-audit --no-fund && touch node_modules/.installed

$(WEB_BUNDLE): $(WEB_STAMP) js/build.mjs $(wildcard js/src/*.js js/src/page/*.js js/src/page/*.css js/src/shims/*.js)
	@echo "==> building the notebook page (runtimed/web/dist)"
	@cd js && node build.mjs

web: $(WEB_BUNDLE)

# Debian packages the tests use (CI runs as root; elsewhere sudo asks): $(call apt_install,PACKAGE,WHY)
define apt_install
	@echo "==> installing Debian's $(1) $(2)"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1) >/dev/null
endef

$(CHROMIUM):
	$(call apt_install,chromium,for the browser tests)

# The remote-kernel tests start their own sshd on loopback (tests/remote).
$(SSHD):
	$(call apt_install,openssh-server,for the remote-kernel tests)

browser: $(CHROMIUM)

sshd: $(SSHD)

# The page's URL (with its token) is printed at start; WS_ADDRESS= turns the listener off.
run: $(STAMP) $(WEB_BUNDLE)
	$(VENV)/bin/runtimed serve $(if $(WS_ADDRESS),--ws $(WS_ADDRESS)) $(RUN_ARGS)

test: $(STAMP) $(EG_STAMP) $(JS_STAMP) $(WEB_BUNDLE) $(CHROMIUM) $(SSHD)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) $(WEB_BUNDLE) $(CHROMIUM) $(EG_STAMP)
	$(PY) scripts/bench.py $(BENCH_ARGS)

bench-quick: $(STAMP) $(WEB_BUNDLE) $(CHROMIUM) $(EG_STAMP)
	$(PY) scripts/bench.py --quick

# The reliability soak for longer than the suite's minute (SOAK_SECONDS=3600 for an hour).
SOAK_SECONDS ?= 600
soak: $(STAMP)
	RUNTIMED_SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m pytest tests/reliability/test_soak.py -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(EG_VENV) tests/js/node_modules js/node_modules runtimed/web/dist .pytest_cache .ruff_cache
