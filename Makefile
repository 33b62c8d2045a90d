# Two commands a new user needs: `make demo` (the main job) and `make test` (the tests).
# Each creates .venv on first use and installs the project; later runs reuse it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Defined before the rules: make expands a rule's prerequisites when it reads the rule.
NODE_DIR := contracts/node
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json

.PHONY: demo test lint typecheck lock secrets-baseline contracts check-contracts node-contracts pacts reference check-reference browser mutation clean

# Everything comes from the locks in requirements/ (docs/supply-chain.md): exact versions, each
# file checked against its sha256, wheels only, so that no sdist build fetches anything unpinned.
# pip and setuptools first, then the package itself without its dependencies or build isolation.
LOCKED_INSTALL := $(BIN)/python -m pip install --quiet --require-hashes --only-binary :all:
$(STAMP): pyproject.toml requirements/build.txt requirements/test.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(LOCKED_INSTALL) -r requirements/build.txt
	$(LOCKED_INSTALL) -r requirements/test.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Recompile requirements/*.txt from pyproject.toml (needs PyPI), then commit them. A refresh keeps
# every pin that still fits; LOCK_ARGS='--upgrade-package NAME' upgrades one, --upgrade all.
LOCK_ARGS ?=
lock: $(STAMP)
	$(BIN)/python requirements/lock.py $(LOCK_ARGS)

demo: $(STAMP)
	$(BIN)/harness simulate

test: $(STAMP) lint typecheck $(NODE_STAMP) browser
	$(BIN)/pytest $(PYTEST_ARGS)

# Headless Chromium for the HTML report's test (tests/browser.py): Debian's packages, installed
# with apt-get when missing (CI runs as root; elsewhere run the printed command once).
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); \
	else echo "install the browser once: sudo apt-get install $(BROWSER_PACKAGES)"; exit 1; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# After the secrets scan reported a false positive (docs/supply-chain.md): `git add` the file,
# then this records it in .secrets.baseline and asks about each new entry ("Should this string
# be committed?" y: a false positive). `detect-secrets audit` itself fails on our own plugin.
secrets-baseline: $(STAMP)
	$(BIN)/detect-secrets scan --baseline .secrets.baseline
	$(BIN)/python -m tests.secret_plugins .secrets.baseline

contracts: $(STAMP)
	$(BIN)/harness contracts generate

# docs/reference.md and deploy/agent-service.env.example, generated from the code (the tests
# fail while the committed ones are stale).
reference: $(STAMP)
	$(BIN)/harness reference generate

check-reference: $(STAMP)
	$(BIN)/harness reference check

# Up to date, accepted by the official AsyncAPI parser, released with the right version bump.
check-contracts: $(STAMP) $(NODE_STAMP)
	$(BIN)/harness contracts check

# npm ci again only when the lock file changes; it works offline from npm's cache.
$(NODE_STAMP): $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --prefer-offline --no-audit --no-fund
	touch $@

# The Node side's pact tests alone (pytest runs them too, in tests/contract/test_pact_node.py).
node-contracts: $(NODE_STAMP)
	cd $(NODE_DIR) && PACT_DO_NOT_TRACK=true npm test

# Rewrite both pact files in contracts/pacts/ (review the diff, then commit).
pacts: $(STAMP) $(NODE_STAMP)
	PACT_UPDATE=1 PACT_DO_NOT_TRACK=true $(BIN)/pytest -m contract tests/contract

# The mutation score of the modules that decide outcomes (docs/mutation.md), by hand: about 15
# minutes on two cores. mutmut keeps its verdicts in mutants/ and reruns only what changed;
# the score script fails when a module is under 90 % or a survivor is not explained.
mutation: $(STAMP)
	$(BIN)/mutmut run --max-children $${MUTATION_JOBS:-2}
	$(BIN)/python -m harness.mutation_score

clean:
	rm -rf mutants $(VENV) .pytest_cache .mypy_cache .ruff_cache $(NODE_DIR)/node_modules
