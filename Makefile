# Both targets bootstrap .venv from nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data/bip
export OMP_NUM_THREADS ?= 1

.PHONY: run test install browser postgres bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# venvs made before the switch to xgboost-cpu: both wheels own the xgboost package, so remove them together
	@if $(BIN)/pip show -q xgboost 2>/dev/null; then $(BIN)/pip uninstall --quiet -y xgboost xgboost-cpu nvidia-nccl-cu12; fi
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/bip simulate --persons 4000 --seed 7 --out $(DATA)
	$(BIN)/bip train --data $(DATA) --promote-if-better
	@echo "Serving on http://127.0.0.1:8000 (docs at /docs). In another shell:"
	@echo '  KEY=$$(.venv/bin/bip keys add --role caseworker)'
	@echo '  curl -s -X POST http://127.0.0.1:8000/v1/score -H "X-API-Key: $$KEY" -H "content-type: application/json" -d @serving/example_citizen.json'
	$(BIN)/bip serve --host 127.0.0.1 --port 8000

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest

# The browser test drives Debian's Chromium through its chromedriver (no browser download).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# The database tests start Debian's PostgreSQL themselves (initdb in a temporary folder, a free port).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

# Benchmarks print ratios against a baseline measured in the same run; they need a champion
# (make run, or bip simulate + bip train --promote-if-better) and wrk for the load test.
bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python bench/serve_latency.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/cohort_scoring.py
	$(BIN)/python bench/training.py
	$(BIN)/python bench/jobs_under_load.py
	$(BIN)/python bench/observability.py
	$(BIN)/python -m bench.evaluation

clean:
	rm -rf $(VENV) data mlruns/mlflow.db mlruns/artifacts
