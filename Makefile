# Two entry points for a newcomer: `make run` (install + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test test-all bench clean

# An editable install leaves qfdjax's bytecode to the first run; it is compiled here
# (it still loads where PYTHONDONTWRITEBYTECODE keeps Python from writing it).
# Recipes are silent (@) and the build backend's notices muted: `make run` prints the scan.
$(BIN)/qfdjax:
	@echo "installing qfdjax and its test dependencies into $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip
	@PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e '.[test]'
	@$(BIN)/python -m compileall -q qfdjax

install: $(BIN)/qfdjax

run: install
	@$(BIN)/qfdjax scan --out runs/seed-16x10

test: install
	@$(BIN)/python -m pytest -q

test-all: install
	QFDJAX_RUN_SLOW=1 $(BIN)/python -m pytest -q

bench: install
	$(BIN)/qfdjax bench --quick --out benchmarks/results/quick-$$(hostname).json

clean:
	rm -rf runs .pytest_cache
