# infogan_pl — `make train` and `make test` are all a new user needs; both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
DATA_DIR ?= data

.PHONY: install train test test-slow bench bench-quality bench-speed bench-rectangles lint format data clean

install: $(STAMP)

# Redone whenever pyproject.toml changes; a no-op otherwise.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(PY) -m infogan_pl $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q --durations=10

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

data: $(STAMP)
	$(PY) -m infogan_pl.data.offline_mnist --data-dir $(DATA_DIR)

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Long runs that print figures; never part of `make test`.
bench-quality: $(STAMP)
	$(PY) -m infogan_pl.bench.quality --seeds $(or $(SEEDS),3) --epochs $(or $(EPOCHS),5) --jobs $(or $(JOBS),1)

bench-speed: $(STAMP)
	$(PY) -m infogan_pl.bench.speed --rounds 5 --variant-rounds 2 --max-batch 4096

bench: bench-speed bench-quality

bench-rectangles: $(STAMP)
	$(PY) -m infogan_pl.bench.rectangles --iterations $(or $(ITERATIONS),3000) --jobs $(or $(JOBS),1)
