# attnlab — set-up and the two everyday commands. `make run` = install + main job; `make test` = install + tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_CPU_VERSION ?= 2.13.0
# Local data root (official GLUE/CLUE/LM files); the tests and runs read it through ATTNLAB_DATA.
ATTNLAB_DATA ?= $(abspath ../shared/data)
export ATTNLAB_DATA
export WANDB_MODE ?= offline

.PHONY: setup run smoke test lint clean

$(BIN)/attnlab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# No GPU → install the CPU wheel first, so the `torch>=2.3` range never pulls a multi-GB CUDA build.
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch; \
	else $(BIN)/pip install -q "torch==$(TORCH_CPU_VERSION)" || \
	     $(BIN)/pip install -q "torch==$(TORCH_CPU_VERSION)" --index-url https://download.pytorch.org/whl/cpu; fi
	$(BIN)/pip install -q -e ".[dev,postgres,dashboard]"
	touch $(BIN)/attnlab

setup: $(BIN)/attnlab

run: setup
	$(BIN)/attnlab reproduce synthesizer --preset cpu

smoke: setup
	$(BIN)/attnlab smoke

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check platform tests
	$(BIN)/mypy platform/attnlab
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
