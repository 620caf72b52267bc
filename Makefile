# The course's commands. The README documents `make book` and `make test`;
# the rest are for readers who want to explore or maintainers who regenerate outputs.

PYTHON ?= python3
VENV ?= .venv
# A reader's machine gets the default PyTorch build (with CUDA where pip offers it).
# CI sets TORCH_SPEC=torch==2.13.0, the CPU wheel available on its machines.
TORCH_SPEC ?= torch
BIN := $(VENV)/bin
PY := $(BIN)/python
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
PYTEST_WORKERS ?= 2

.PHONY: book test lab notebooks bench lint clean help

help:
	@echo "make book       build the book into _build/html and print its path"
	@echo "make test       run the whole test suite (package, notebooks, book, browser)"
	@echo "make lab        open JupyterLab on the notebooks"
	@echo "make notebooks  re-execute every notebook and store clean outputs"
	@echo "make bench      print the speed and quality benchmark"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra, so `make book` does not install the test tools.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$*]"
	@touch $@

book: $(VENV)/.installed-book
	$(BIN)/jupyter-book build . -W --keep-going --all
	@echo
	@echo "The book is at: file://$(CURDIR)/_build/html/index.html"
	@$(PY) -m lm_course.open_book _build/html/index.html

# Stored outputs were made with one thread and no progress bars; the checks need the same.
test: $(VENV)/.installed-test
	OMP_NUM_THREADS=1 LM_COURSE_PROGRESS=0 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

lab: $(VENV)/.installed-dev
	$(BIN)/jupyter lab notebooks/

notebooks: $(VENV)/.installed-test
	OMP_NUM_THREADS=1 LM_COURSE_PROGRESS=0 $(PY) -m lm_course.regenerate $(NOTEBOOKS)

bench: $(VENV)/.installed-book
	$(PY) -m lm_course bench

lint: $(VENV)/.installed-test
	$(BIN)/ruff check lm_course tests notebooks

clean:
	rm -rf _build .pytest_cache
