# edgefuse: `make demo` and `make test` work on a fresh machine.
# Torch: on a machine that ships the local CPU wheel (/opt/wheels), pin torch==2.13.0 so
# pip takes that file and never pulls CUDA packages; elsewhere install the normal torch
# (CUDA builds on NVIDIA machines). Override with `make TORCH_SPEC=... test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= $(shell ls /opt/wheels/torch-2.13.0*.whl >/dev/null 2>&1 && echo "torch==2.13.0" || echo "torch")

.PHONY: demo test venv install install-dev apt-deps ros-deps ros2-env clean

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

# ROS 2 (Jazzy) for the live ROS 2 node tests: rclpy with Fast DDS from PyPI wheels, in a
# second venv. It cannot share the first: ROS 1's Debian message packages (sensor_msgs,
# std_msgs...) have the same module names as ROS 2's. The tests start the node and their
# publishers/subscribers with this venv's python (tests/ros_bridge/ros2_helpers.py).
VENV2 ?= .venv-ros2
PY2 := $(VENV2)/bin/python
ROS2_PIP := "ros-jazzy-rclpy[fastrtps]" ros-jazzy-sensor-msgs ros-jazzy-std-msgs ros-jazzy-diagnostic-msgs \
	ros-jazzy-rosgraph-msgs
$(VENV2)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV2)
	$(PY2) -m pip install -q --upgrade pip
	$(PY2) -m pip install -q "$(TORCH_SPEC)"
	$(PY2) -m pip install -q -e ".[rosbag]" $(ROS2_PIP)
	@touch $@

ros2-env: $(VENV2)/.installed

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

test: install-dev ros-deps ros2-env
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) $(VENV2) build *.egg-info
