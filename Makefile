# hipimu: `make demo` and `make test` each do all of the set-up themselves on a
# fresh Debian 12 machine: Debian packages (apt-get), a virtualenv in .venv,
# the package with its test extras. Re-running them skips what is done.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.hipimu-installed
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# python3-venv: Debian's python3 cannot create a venv without it.
# libglib2.0-0 .. libxkbcommon0: what the Qt wheels (PySide6) need to run offscreen.
# gcc .. qemu-system-arm: the firmware's tests (firmware/Makefile, firmware/board): host
# compilers and cmocka, the Cortex-M4F cross compiler with newlib, QEMU.
# dbus-daemon python3-dbusmock: the BLE tests run bleak against a simulated BlueZ
# on a private bus (the mock runs under Debian's python3, which has dbus and gi).
# xvfb x11-apps libxcb-* libxkbcommon-x11-0: the dashboard's tests and bench under a
# real X server (Xvfb; Qt's xcb platform refuses to load without libxcb-cursor0 and
# the others), x11-apps for xwd, which captures the X server's root window.
APT_PACKAGES := python3-venv libglib2.0-0 libgl1 libegl1 libx11-6 libdbus-1-3 \
                libfontconfig1 libxkbcommon0 \
                gcc g++ make libcmocka-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm \
                dbus-daemon python3-dbusmock \
                xvfb x11-apps libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
                libxcb-render-util0 libxcb-render0 libxcb-shape0 libxcb-util1 libxcb-xkb1 \
                libxkbcommon-x11-0 poppler-utils

.PHONY: demo test firmware-test apt venv bench clean

demo: venv
	$(VENV)/bin/hipimu demo

test: venv firmware-test
	$(PY) -m pytest

# The firmware core's unit tests on the host (sanitizers) and under QEMU; the
# board layer's syntax against stub headers and its PC simulation on fake
# hardware, checked with hipimu's own decoder (hence the venv).
firmware-test: venv
	$(MAKE) -C firmware test
	firmware/board/check_syntax.sh
	firmware/board/sim/run_sim.sh

bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

venv: apt $(STAMP)

apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "Installing Debian packages:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
	$(MAKE) -C firmware clean
