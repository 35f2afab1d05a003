# infogan_pl — `make train` and `make test` are all a new user needs; both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
DATA_DIR ?= data

.PHONY: help install train test test-slow bench bench-quality bench-speed bench-rectangles bench-seeds lint format data clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' | expand -t 20

install: $(STAMP)  ## create .venv and install the package (redone when pyproject.toml changes)

# Redone whenever pyproject.toml changes; a no-op otherwise.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)  ## train BasicProp line (the study's first experiment); ARGS="key=value ..." adds overrides
	$(PY) -m infogan_pl experiment=basicprop_line $(ARGS)

test: $(STAMP)  ## the test suite (no GPU, no network)
	$(PY) -m pytest -q -n 2 --durations=10

test-slow: $(STAMP)  ## the slow tests: torch.compile, LeNet-5 >= 99% on the real MNIST (needs `make data`)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)  ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## ruff format + autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

data: $(STAMP)  ## import the real MNIST offline into $(DATA_DIR)/MNIST/raw and train the evaluation's LeNet-5
	$(PY) -m infogan_pl.data.offline_mnist --data-dir $(DATA_DIR)
	$(PY) -m infogan_pl.metrics.lenet --data-dir $(DATA_DIR)

clean:  ## remove outputs and caches
	rm -rf outputs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Long runs that print figures; never part of `make test`.
bench-quality: $(STAMP)  ## MNIST: the recommended preset against the original scheme, 5 seeds x 3 epochs (SEEDS, EPOCHS, JOBS, VARIANTS)
	$(PY) -m infogan_pl.bench.quality --seeds $(or $(SEEDS),5) --epochs $(or $(EPOCHS),3) --jobs $(or $(JOBS),2) $(if $(VARIANTS),--variants $(VARIANTS),)

bench-speed: $(STAMP)  ## framework vs a plain PyTorch loop, data rates, fast paths, batch sizes
	$(PY) -m infogan_pl.bench.speed --rounds 5 --variant-rounds 2 --max-batch 4096

bench: bench-speed bench-quality  ## both benchmarks

# A seed grid is a Hydra multirun (joblib launcher, THREADS torch threads per job) followed by `report`.
PRESETS ?= basicprop_line
SEEDS ?= 0,1,2,3,4
# RECIPES empty: each preset's own recipe; RECIPES=study for the study's, or e.g. default,layer_norm to compare
RECIPES ?=
JOBS ?= 2
THREADS ?= 1
SWEEP ?= outputs/bench-seeds/$(shell date +%Y-%m-%d_%H-%M-%S)
bench-seeds: $(STAMP)  ## presets x seeds x recipes, then success n/N and medians per row (PRESETS, SEEDS, RECIPES, JOBS, THREADS)
	OMP_NUM_THREADS=$(THREADS) $(PY) -m infogan_pl -m experiment=$(PRESETS) seed=$(SEEDS) $(if $(RECIPES),recipe=$(RECIPES)) \
		hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) hydra.sweep.dir=$(SWEEP) logger=csv \
		trainer.enable_progress_bar=false $(ARGS); status=$$?; \
	$(PY) -m infogan_pl.report $(SWEEP) && exit $$status

bench-rectangles: $(STAMP)  ## every stability lever against BasicProp rectangles (ITERATIONS, JOBS)
	$(PY) -m infogan_pl.bench.rectangles --iterations $(or $(ITERATIONS),3000) --jobs $(or $(JOBS),1)
