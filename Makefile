VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test lint install system-deps bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Chromium and tmux, which the tests drive: installed with apt-get when run as root,
# otherwise the one command to run is printed and make stops.
system-deps:
	@.ci/system-deps

demo: install
	$(VENV)/bin/aztriage --demo

# The static checks (configured in pyproject.toml): ruff's rules and its formatter (the tree is
# formatted: `ruff format .`), the import-linter contracts that keep the layers of README.md's
# "Architecture", and mypy. `make test` runs them first.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: system-deps install lint
	$(PY) -m pytest -n auto --dist loadgroup

bench: install
	$(PY) benchmarks/inventory.py

clean:
	rm -rf $(VENV) build *.egg-info
