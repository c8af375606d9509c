# xoda: two commands, on a fresh machine with nothing installed by hand.
#   make run   installs what the service needs, builds the demo archive if absent, serves it
#   make test  installs everything (system packages included) and runs the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
BUILD := .build

# Debian packages: sherpa's build needs the first four; the tests need the rest.
APT_RUN := byacc flex libfftw3-dev pkg-config
APT_TEST := $(APT_RUN) docker.io debootstrap chromium

.PHONY: run test system-run system-test venv-run venv-test dockerd worker-image demo-archive

run: system-run venv-run demo-archive
	$(VENV)/bin/xoda serve

test: system-test venv-test dockerd worker-image
	$(VPY) -m pytest

define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing system packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else echo "Missing system packages:$$missing (run make as root to install them)"; exit 1; fi; \
	fi
endef

system-run:
	$(call apt_install,$(APT_RUN))

system-test:
	$(call apt_install,$(APT_TEST))

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

$(VENV)/.run-installed: $(VENV)/bin/activate setup.cfg pyproject.toml
	$(VPY) -m pip install -q -e '.[fit]'
	touch $@

$(VENV)/.test-installed: $(VENV)/bin/activate setup.cfg pyproject.toml
	$(VPY) -m pip install -q -e '.[fit,dask,docker,test]'
	touch $@

venv-run: $(VENV)/.run-installed
venv-test: $(VENV)/.test-installed

# Start a Docker engine when none answers and we may (root); tests skip docker otherwise.
dockerd:
	@if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    mkdir -p $(BUILD); echo "Starting dockerd (log: $(BUILD)/dockerd.log)"; \
	    (nohup dockerd > $(BUILD)/dockerd.log 2>&1 &); \
	    for i in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
	  fi; \
	fi

# The worker image of the docker executor, built locally (no registry is reachable).
worker-image:
	@if docker info >/dev/null 2>&1; then $(VPY) -m dataserver.docker.image --build-dir $(BUILD)/worker-image; \
	else echo "No Docker engine answers: the docker executor tests will be skipped"; fi

demo-archive: venv-run
	@$(VENV)/bin/xoda sim --demo --if-absent
