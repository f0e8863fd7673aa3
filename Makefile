# Set-up and test commands of neuromct-tf. Each target creates .venv when it
# is missing and installs the package with what the target needs, so each
# works as the only command on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := demo-output

.PHONY: demo test docs clean help

help:
	@echo "make demo   create .venv, install, fit the example calibration file with the bundled regressor"
	@echo "make test   create .venv, install, run the test suite and build the docs (warnings are errors)"
	@echo "make docs   build the HTML docs into docs/_build/html"
	@echo "make clean  remove .venv, build outputs and the demo output"

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/neuromct-tf fit examples/calib_example.root --truth 12.75,0.425,9850 --seed 1 \
		--out $(DEMO_DIR) --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not interop"
	$(MAKE) docs

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build $(DEMO_DIR) .pytest_cache
