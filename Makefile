# Two set-up commands for a fresh machine: `make run` and `make test`.
# llama-cpp-python compiles llama.cpp from source the first time (about 6 minutes on 2 cores);
# pip caches the wheel, so later installs take seconds.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint typecheck pytest bench engine package package-test clean

$(PY):
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		(echo "Hearth needs Python 3.11 or newer" >&2; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-package: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[package]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(VENV)/bin/hearth

lint: $(VENV)/.installed-test
	$(PY) -m ruff check app ui tests benchmarks
	$(PY) -m mypy

pytest: $(VENV)/.installed-test
	$(PY) tests/helpers/fetch_test_model.py smollm2
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

test: lint pytest

# The portable engine (packaging/build_engine.py): llama.cpp's backends as modules, CPU code for every processor and
# Vulkan. Cached by its flags: the first build takes about half an hour on 2 cores, later ones seconds. The tests of
# the graphics card path run on it (HEARTH_ENGINE); without it they are skipped.
ENGINE ?= build/engine
engine: $(VENV)/.installed
	$(PY) packaging/build_engine.py --install $(ENGINE)

bench: $(VENV)/.installed-test
	$(PY) benchmarks/engine_overhead.py

# The installer for this system from the working tree (on Linux: dist/Hearth/ and dist/Hearth-<version>-linux-*.tar.gz).
package: $(VENV)/.installed-package engine
	$(PY) packaging/build.py --engine $(ENGINE)

# Builds it, then proves the frozen app starts its window, engine worker and document reader, and chats, also with
# its AVX-512 CPU code hidden (a processor older than this one).
package-test: $(VENV)/.installed-package engine
	$(PY) tests/helpers/fetch_test_model.py
	$(PY) packaging/build.py --engine $(ENGINE)
	dist/Hearth/Hearth --self-test --model "$$($(PY) tests/helpers/fetch_test_model.py | sed -n 's/^test model: //p')"
	$(PY) packaging/check_cpu_code.py dist/Hearth/Hearth \
		--model "$$($(PY) tests/helpers/fetch_test_model.py | sed -n 's/^test model: //p')"

clean:
	rm -rf $(VENV) build dist *.egg-info
