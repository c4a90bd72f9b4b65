# The two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test venv system-deps lint bench clean

# setuptools prints an "Editable installation. Please be careful with folders ..."
# notice on every editable install whose packages are not all below one directory
# (adapters/ and schemas/ install inside nlets_switch): it is information about
# editable installs, not a problem of this project, so the install does not show it.
$(BIN)/nlets-switch: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e '.[test,fast]'
	touch $@

venv: $(BIN)/nlets-switch

## run: make the environment and start the switch in the demo world (127.0.0.1:7330)
run: venv
	$(BIN)/nlets-switch serve $(ARGS)

## system-deps: the outside programs the tests use (mosquitto, chromium, openssl)
system-deps:
	bash deploy/install-system-deps.sh

## test: install what the tests need, check types and style, run the tests
test: venv system-deps
	$(BIN)/ruff check nlets_switch adapters tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict adapters
	$(BIN)/pytest $(ARGS)

lint: venv
	$(BIN)/ruff check nlets_switch adapters tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict adapters

bench: venv
	$(BIN)/python benchmarks/bench_switch.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info nlets-data
