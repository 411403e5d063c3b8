# edgefuse: `make demo` and `make test` work on a fresh machine.
# Torch: on a machine that ships the local CPU wheel (/opt/wheels), pin torch==2.13.0 so
# pip takes that file and never pulls CUDA packages; elsewhere install the normal torch
# (CUDA builds on NVIDIA machines). Override with `make TORCH_SPEC=... test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= $(shell ls /opt/wheels/torch-2.13.0*.whl >/dev/null 2>&1 && echo "torch==2.13.0" || echo "torch")

.PHONY: demo test venv install install-dev apt-deps ros-deps clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@touch $@

venv: $(VENV)/.created

# System libraries that open3d / pyrealsense2 need (Debian); skipped when not root or not apt.
apt-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = "0" ]; then \
	  dpkg -s libusb-1.0-0 libgomp1 >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 libgomp1 >/dev/null); \
	fi

# ROS 1 for the live node tests (Debian's own ROS 1, see README "ROS"): installed when root on
# a Debian/Ubuntu with these packages. The venv sees it through a .pth that APPENDS Debian's
# dist-packages to sys.path, so every package installed in the venv (numpy, cv2, yaml...)
# still wins; only what the venv lacks (rospy, genpy, the message packages) comes from there.
ROS_APT := ros-core python3-rospy python3-sensor-msgs python3-std-msgs python3-diagnostic-msgs python3-message-filters
ros-deps: $(VENV)/.created
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = "0" ]; then \
	  dpkg -s $(ROS_APT) >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(ROS_APT) >/dev/null) || \
	  echo "ros-deps: apt could not install ROS 1 ($(ROS_APT)); the ROS 1 tests will fail"; \
	fi
	@if [ -d /usr/lib/python3/dist-packages/rospy ]; then \
	  echo /usr/lib/python3/dist-packages > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_debian_ros.pth"; \
	fi

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[synth,train,viz]"
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[dev]"
	@touch $@

install: apt-deps $(VENV)/.installed
install-dev: apt-deps $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/edgefuse demo

test: install-dev ros-deps
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info
