# Varta: one Makefile for a fresh Debian 12 (Python 3.11). See README.md.
#   make demo   install what is needed, then run Varta with demonstration cameras
#   make test   install what is needed, then run the test suite
#   make bench  run the benchmarks (bench/README.md)

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: ffmpeg for recording/export, GStreamer's RTSP server for the demo and
# test cameras (run by Debian's own python3, which has the gi bindings); DejaVu fonts for
# Cyrillic in PDF reports. Tests also drive Debian's chromium (the console's end-to-end tests).
# Tests check evidence packages with the standard tools a court uses: openssl and sha256sum.
# ONVIF tests run in a network namespace of their own (unshare from util-linux, ip from iproute2).
APT_RUNTIME = ffmpeg python3-venv python3-pip python3-gi gir1.2-gst-rtsp-server-1.0 \
              gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-rtsp \
              fonts-dejavu-core
APT_TEST    = procps util-linux iproute2 chromium openssl coreutils prometheus

.PHONY: demo test bench system-deps test-deps apt-install venv clean

system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_RUNTIME)"

test-deps: system-deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_TEST)"

apt-install:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Every Python package at the version in constraints.txt (reproducible installs; how to
# regenerate it is written at its top).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

venv: system-deps $(VENV)/.installed

demo: venv
	$(VENV)/bin/varta demo

# The ONVIF camera the tests drive: IPyCam's device (tests/onvif_device.py), without its
# dependencies: it would pull the GUI build of OpenCV over the headless one Varta uses.
$(VENV)/.test-devices: $(VENV)/.installed
	$(PY) -m pip install -q --no-deps 'ipycam==1.3.0'
	touch $@

# The OpenID provider the single sign-on tests run (tests/oidc: panva's oidc-provider, the
# version pinned in package-lock.json). Debian's nodejs and npm only where npm is missing
# (a machine with Node.js from elsewhere keeps it).
tests/oidc/node_modules/.installed: tests/oidc/package.json tests/oidc/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory apt-install PACKAGES="nodejs npm"
	cd tests/oidc && npm ci --no-audit --no-fund
	touch $@

test: test-deps venv $(VENV)/.test-devices tests/oidc/node_modules/.installed
	$(PY) -m pytest -q -ra -n 2 --dist loadfile

# The pure tier: no process is started (no Varta server, ffmpeg, RTSP simulator, Chromium,
# S3 server; tests/conftest.py marks every test that starts one `e2e`). Under a minute.
.PHONY: test-fast
test-fast: venv
	$(PY) -m pytest -q -m "not e2e" -n 2

bench: venv
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) .cache .pytest_cache
