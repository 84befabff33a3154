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
	$(PY) -m pip install --quiet -e '.[test,llm,hls4ml,ray,fpga]'
	touch $(STAMP)

venv: $(STAMP)

system-tools:
	bash docker/install-system-tools.sh

# As root the system tools are installed first (as for `make test`); without them the
# demo runs the software steps and names the skipped ones and the install command.
demo: $(STAMP)
	bash docker/install-system-tools.sh || echo "make demo: tools not installed; the flow runs the steps it can"
	$(VENV)/bin/axe-deploy run flows/digits_mlp.toml --out build/digits_mlp

test: $(STAMP) system-tools
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

clean:
	rm -rf build .axe_cache
