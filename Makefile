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
APT_TEST    = procps util-linux iproute2 chromium openssl coreutils

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

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: system-deps $(VENV)/.installed

demo: venv
	$(VENV)/bin/varta demo

# The ONVIF camera the tests drive: IPyCam's device (tests/onvif_device.py), without its
# dependencies: it would pull the GUI build of OpenCV over the headless one Varta uses.
$(VENV)/.test-devices: $(VENV)/.installed
	$(PY) -m pip install -q --no-deps 'ipycam==1.3.0'
	touch $@

test: test-deps venv $(VENV)/.test-devices
	$(PY) -m pytest -q -ra -n 2 --dist loadfile

bench: venv
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) .cache .pytest_cache
