# make demo: set up .venv and run a real GenePlexus job on synthetic data.  make test: set up and run all the tests
# (what CI runs).  make test-fast: the same without the tests marked slow (load, faults, end-to-end, browser).
# The queue tests need Azurite (Azure Storage emulator, pinned in package.json): `make test` runs `npm ci`
# when node_modules is missing or package-lock.json changed. `make demo` needs no npm.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup npm-setup demo test test-fast lint checkov serve azurite-start azurite-stop azurite-status clean

setup: $(STAMP)

# The test environment installs the function app's lock first (requirements.txt: every package pinned, with hashes),
# so the tests run the very stack Azure installs; then mljob itself and the dev tools, which keep those pins.
$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.txt
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

npm-setup: $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the queue tests need Node.js >= 20 and npm (for Azurite)" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

demo: $(STAMP)
	$(BIN)/mljob demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The edit-test loop: everything but the tests marked slow (-m slow runs only those).
test-fast: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow"

# checkov on Terraform/, in its own .venv-checkov (installed once by the script; never in .venv: see the script).
checkov:
	bash scripts/checkov.sh

# A local Azurite on 127.0.0.1:10000-10002 (data in .azurite/data), as local.settings.json.example expects.
azurite-start: $(NPM_STAMP)
	$(PYTHON) scripts/azurite.py start

azurite-stop:
	$(PYTHON) scripts/azurite.py stop

azurite-status:
	$(PYTHON) scripts/azurite.py status

# Development server (not the Functions host): settings from the environment or local.settings.json.
serve: $(STAMP) azurite-start
	$(BIN)/mljob serve

clean:
	-$(PYTHON) scripts/azurite.py stop
	rm -rf $(VENV) .venv-checkov mljob-demo .pytest_cache .ruff_cache *.egg-info node_modules .azurite
