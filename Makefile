# MoMu: `make demo` and `make test` work on a fresh machine (they create .venv first).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := work/demo
# librosa compiles with numba on first use (~14 s); keep the cache between runs.
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba

.PHONY: venv test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

# The main job on the embedded default (no download): synthetic dance videos ->
# extraction with the real pose model -> WebDataset shards -> summary and a plot.
demo: $(STAMP)
	$(BIN)/momu-data synth --n 20 --seconds 12 --out $(DEMO)/videos --seed 0
	$(BIN)/momu-data extract $(DEMO)/videos --out $(DEMO)/data --clip-seconds 6 --dataset synthetic
	$(BIN)/momu-data shard $(DEMO)/data --out $(DEMO)/shards --split 80/10/10
	$(BIN)/momu-data inspect $(DEMO)/shards --plot $(DEMO)/clip.png
	@echo "demo outputs: $(DEMO)/videos (mp4 + ground truth), $(DEMO)/data (features, manifests), $(DEMO)/shards (WebDataset), $(DEMO)/clip.png"

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(DEMO) .cache
