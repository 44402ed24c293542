VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test install bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/aztriage --demo

test: install
	$(PY) -m pytest -n auto --dist loadgroup

bench: install
	$(PY) benchmarks/inventory.py

clean:
	rm -rf $(VENV) build *.egg-info
