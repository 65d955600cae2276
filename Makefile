# Two entry points: `make run` (dashboard) and `make test` (whole suite).
# Both create the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SHARED_DATASETS ?= ../shared/datasets
DEV_DATA ?= .cache/cifar10-dev

.PHONY: run test venv dev-data bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m dashboard

# Builds the development split of CIFAR-10 from ../shared/datasets when it is there.
dev-data: $(STAMP)
	@if [ -f $(DEV_DATA)/cifar-10-batches-py/test_batch ]; then :; \
	elif [ -f $(SHARED_DATASETS)/build_cifar10.py ]; then \
	  $(PY) $(SHARED_DATASETS)/build_cifar10.py $(DEV_DATA); \
	else echo "note: $(SHARED_DATASETS) not found; tests on real CIFAR-10 images will skip"; fi

test: $(STAMP) dev-data
	@if [ -z "$$CIFAR10_ROOT" ] && [ -f $(DEV_DATA)/cifar-10-batches-py/test_batch ]; then \
	  export CIFAR10_ROOT=$(abspath $(DEV_DATA)); fi; \
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP) dev-data
	CIFAR10_ROOT=$${CIFAR10_ROOT:-$(abspath $(DEV_DATA))} $(PY) -m bench.presets

clean:
	rm -rf $(VENV) .cache .pytest_cache
