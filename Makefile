# racesim: two commands. `make demo` runs the scenarios; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test links lint typecheck bench clean picture

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/racesim run scenarios scenarios/jobqueue

# mypy and lint-imports read the packages by their installed names: racesim ->
# harness/, racesim.store -> store/, racesim.systems -> systems/, through a tree
# of links rebuilt on every run.
links:
	@rm -rf .cache/typecheck && mkdir -p .cache/typecheck/racesim
	@for f in harness/*; do ln -s "../../../$$f" .cache/typecheck/racesim/; done
	@ln -s ../../../store .cache/typecheck/racesim/store
	@ln -s ../../../systems .cache/typecheck/racesim/systems

# The layers (pyproject.toml, [tool.importlinter]).
lint: $(STAMP) links
	$(BIN)/ruff check harness store systems tests
	$(BIN)/ruff format --check harness store systems tests
	PYTHONPATH=.cache/typecheck $(BIN)/lint-imports --no-cache

typecheck: $(STAMP) links
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n auto -q

# The README's picture: the T+0..T+4 race on the legacy store as its HTML page,
# drawn by headless Chromium (Debian's chromium), opened at the T+3 clear.
PAGE := .cache/t0-t4-legacy.html
picture: $(STAMP)
	@mkdir -p .cache
	$(BIN)/racesim run scenarios/t0-t4-cron-wipes-user.toml --store legacy --html $(PAGE)
	@profile=$$(mktemp -d) && chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
	  --no-first-run --disable-background-networking --disable-component-update --disable-sync \
	  --user-data-dir="$$profile" --window-size=1500,1000 \
	  --screenshot=docs/t0-t4-legacy.png "file://$(CURDIR)/$(PAGE)#event-9" 2>/dev/null; \
	  status=$$?; rm -rf "$$profile"; exit $$status

bench: $(STAMP)
	$(BIN)/racesim bench startup
	$(BIN)/racesim bench engine

clean:
	rm -rf $(VENV) .cache build *.egg-info
