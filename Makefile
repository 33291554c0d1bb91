# racesim: two commands. `make demo` runs the scenarios; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/racesim run scenarios scenarios/jobqueue

lint: $(STAMP)
	$(BIN)/ruff check harness store systems tests
	$(BIN)/ruff format --check harness store systems tests

# mypy reads the packages by their installed names: racesim -> harness/,
# racesim.store -> store/, racesim.systems -> systems/, through a tree of links
# rebuilt on every run.
typecheck: $(STAMP)
	@rm -rf .cache/typecheck && mkdir -p .cache/typecheck/racesim
	@for f in harness/*; do ln -s "../../../$$f" .cache/typecheck/racesim/; done
	@ln -s ../../../store .cache/typecheck/racesim/store
	@ln -s ../../../systems .cache/typecheck/racesim/systems
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n auto -q

bench: $(STAMP)
	$(BIN)/racesim bench startup
	$(BIN)/racesim bench engine

clean:
	rm -rf $(VENV) .cache build *.egg-info
