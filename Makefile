# MoMu: `make demo` and `make test` work on a fresh machine (they create .venv first).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := work/demo
# librosa compiles with numba on first use (~14 s); keep the cache between runs.
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba

.PHONY: venv test lint format demo bench clean

# torch first, pinned: pip takes the CPU build this machine has on disk; a bare `torch`
# requirement (pyproject.toml asks for torch>=2.0) would download a CUDA build instead.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

# Style gate (ruff's rules and settings are in pyproject.toml): lint, then formatting, read-only.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites files: formatting first, then the safe lint fixes (import order, pyupgrade).
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The main job on the embedded default, offline: synthetic dance videos -> extraction with
# the real pose model -> shards -> BiCoR-VAE (small) -> both diffusion models (small) ->
# a 30 s joint sample and a dance for one of the synthetic songs.
DEMO_N ?= 20
DEMO_VAE_STEPS ?= 200
DEMO_DIFF_STEPS ?= 250
demo: $(STAMP)
	$(BIN)/momu-data synth --n $(DEMO_N) --seconds 12 --out $(DEMO)/videos --seed 0
	$(BIN)/momu-data extract $(DEMO)/videos --out $(DEMO)/data --clip-seconds 6 --dataset synthetic
	$(BIN)/momu-data shard $(DEMO)/data --out $(DEMO)/shards --split 80/10/10
	$(BIN)/momu-train vae $(DEMO)/shards --preset small --steps $(DEMO_VAE_STEPS) --run-dir $(DEMO)/runs/vae --val-every 100 --ckpt-every 100
	$(BIN)/momu-train diffusion $(DEMO)/shards --task motion2music --preset small --steps $(DEMO_DIFF_STEPS) --crop-seconds 4 --vae $(DEMO)/runs/vae --run-dir $(DEMO)/runs/motion2music --val-every 200 --ckpt-every 200
	$(BIN)/momu-train diffusion $(DEMO)/shards --task music2motion --preset small --steps $(DEMO_DIFF_STEPS) --crop-seconds 4 --vae $(DEMO)/runs/vae --run-dir $(DEMO)/runs/music2motion --val-every 200 --ckpt-every 200
	$(BIN)/momu-generate --joint --length 30s --checkpoints $(DEMO)/runs --out $(DEMO)/outputs
	$(BIN)/momu-generate --music $(DEMO)/videos/synth_001.mp4 --checkpoints $(DEMO)/runs --out $(DEMO)/outputs
	$(BIN)/momu-data inspect $(DEMO)/shards --plot $(DEMO)/clip.png
	@echo "demo outputs: $(DEMO)/outputs/ (joint_s0_0.mp4: 30 s of music and dance; synth_001_dance_s0_0.mp4: dance for a synthetic song),"
	@echo "  $(DEMO)/runs/ (trained models), $(DEMO)/shards/ (WebDataset), $(DEMO)/data/ (features, manifests), $(DEMO)/videos/ (inputs)"

# Small sizes for a 2-core CPU; `python -m benchmarks` alone adds the paper presets
# (minutes per step on a CPU), `--cuda` the GPU runs.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(DEMO) .cache
