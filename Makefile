# The two commands of the README. Both set up the virtual environment first if it is missing or stale.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.effvid-installed

.PHONY: demo test test-edge lint research-test test-quick mutation docs

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/effvid demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not edge"

# The ExecuTorch exports (each lowering takes about a minute on 2 cores) and the deployable forms
# of the larger rungs.
test-edge: $(STAMP)
	$(BIN)/python -m pytest -m edge

research-test: $(STAMP)
	$(BIN)/python -m pytest research -m research

# Every test but the slow ones, those that start other processes or a browser, and the parity
# tests against ../shared/reference (`make test` runs them all).
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not subprocess and not reference and not browser and not edge"

# Mutation testing of the modules whose mistakes give silently wrong results, against their fast
# tests ([tool.mutmut] in pyproject.toml; scores in docs/testing.md). Mutants go to mutants/.
mutation: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $${MUTATION_JOBS:-1}
	$(BIN)/mutmut results

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site into site/; strict: a broken link or reference fails.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site
