# The two commands of the README. Both set up the virtual environment first if it is missing or stale.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.effvid-installed

.PHONY: demo test lint research-test docs

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/effvid demo

test: $(STAMP)
	$(BIN)/python -m pytest

research-test: $(STAMP)
	$(BIN)/python -m pytest research -m research

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site into site/; strict: a broken link or reference fails.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site
