# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-tools clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned resolve pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,llm,hls4ml,ray]'
	touch $(STAMP)

venv: $(STAMP)

system-tools:
	bash docker/install-system-tools.sh

demo: $(STAMP)
	$(VENV)/bin/axe-deploy run flows/digits_mlp.toml --out build/digits_mlp

test: $(STAMP) system-tools
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

clean:
	rm -rf build .axe_cache
