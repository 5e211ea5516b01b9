# The whole set-up is two commands: `make demo` and `make test`. Both create and fill
# .venv themselves (Python 3.11+ and a C compiler are all a fresh machine needs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SOURCES := $(shell find sdk trainer native -name '*.py' -o -name '*.pyx' -o -name '*.pyi' -o -name '*.json') setup.py pyproject.toml

.PHONY: demo test lint pytest pytest-pure bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip "setuptools>=70" wheel "Cython>=3.0,<4"

# The SDK alone (what a device installs). build/ is removed first: setuptools reuses it, and
# a module deleted from the sources would otherwise still ship in the wheel.
$(VENV)/.sdk: $(BIN)/python $(SOURCES)
	rm -rf build
	$(BIN)/pip install --no-build-isolation .
	touch $@

# SDK + trainer (TensorFlow), for the demo: it trains, then runs the device side (which
# never imports TensorFlow) in the same venv.
$(VENV)/.trainer: $(BIN)/python $(SOURCES)
	rm -rf build
	$(BIN)/pip install --no-build-isolation ".[trainer]"
	touch $@ $(VENV)/.sdk

# SDK + trainer (with the text-embedding extra) + dev tools, for the tests. Not editable:
# the tests run against the installed package, compiled extension included, as a user
# would get it.
$(VENV)/.dev: $(BIN)/python $(SOURCES)
	rm -rf build
	$(BIN)/pip install --no-build-isolation ".[trainer,embed,dev]"
	touch $@ $(VENV)/.sdk $(VENV)/.trainer

# Train (tiny config) -> publish (TUF) -> serve on 127.0.0.1 -> a device updates, replays a
# reader's history and recommends. `make demo DEMO_ARGS=--synthetic` forces synthetic data.
demo: $(VENV)/.trainer
	$(BIN)/python examples/demo.py $(DEMO_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(VENV)/.dev
	$(BIN)/python -m pytest

# The SDK suite a second time with the pure-Python hashing twin forced.
pytest-pure: $(VENV)/.dev
	EDGEREC_PURE_PYTHON=1 $(BIN)/python -m pytest -m "not trainer"

test: lint pytest pytest-pure

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_hashing.py
	$(BIN)/python benchmarks/bench_history.py
	$(BIN)/python benchmarks/bench_bundle.py
	$(BIN)/python benchmarks/bench_recommend.py
	$(BIN)/python benchmarks/bench_update.py

clean:
	rm -rf $(VENV) build *.egg-info native/*.c demo-out
