# Both targets bootstrap .venv from nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data/bip
export OMP_NUM_THREADS ?= 1

.PHONY: run test install simulate bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/bip simulate --persons 4000 --seed 7 --out $(DATA)
	$(BIN)/bip train --data $(DATA) --promote-if-better

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data mlruns/mlflow.db mlruns/artifacts
