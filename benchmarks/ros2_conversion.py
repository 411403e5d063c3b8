"""What rclpy's message conversion costs the ROS 2 node per 640x480 frame, and the cheaper way
the adapter takes (issue 16): building an outgoing sensor_msgs/Image with `data=` in the
constructor (rclpy copies an array('B') element by element there) against assigning it after
(the setter keeps the array), and the incoming side (deserialising colour and depth, then the
numpy view the core decodes from).

    python benchmarks/ros2_conversion.py [--size 480x640] [--iterations 200]

Runs itself in .venv-ros2 (`make ros2-env`). Writes benchmarks/results/ros2_conversion.{json,md}
with the command, machine, date and load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(a: argparse.Namespace) -> dict:
    """In the ROS 2 interpreter: median ms of each conversion."""
    import array

    import numpy as np
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    h, w = (int(v) for v in a.size.split("x"))
    rng = np.random.default_rng(0)
    arrays = {"mono8": rng.integers(0, 256, (h, w), dtype=np.uint8),
              "rgb8": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
              "16UC1": rng.integers(0, 5000, (h, w), dtype=np.uint16)}

    def median_ms(fn) -> float:
        fn()
        times = []
        for _ in range(a.iterations):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e3)

    def as_array(x: np.ndarray) -> array.array:
        data = array.array("B")
        data.frombytes(memoryview(np.ascontiguousarray(x)).cast("B"))
        return data

    def constructor(enc: str):
        x = arrays[enc]
        return lambda: Image(height=h, width=w, encoding=enc, step=x.nbytes // h, data=as_array(x))

    def setter(enc: str):
        x = arrays[enc]

        def build():
            m = Image(height=h, width=w, encoding=enc, step=x.nbytes // h)
            m.data = as_array(x)
            return m
        return build

    out = {}
    for enc in ("mono8", "rgb8"):
        out[f"build {enc}, data= in the constructor (before)"] = median_ms(constructor(enc))
        out[f"build {enc}, data assigned after (the adapter)"] = median_ms(setter(enc))
        msg = setter(enc)()
        out[f"serialise {enc} (rclpy publish)"] = median_ms(lambda m=msg: serialize_message(m))
    for enc in ("rgb8", "16UC1"):
        raw = serialize_message(setter(enc)())
        out[f"deserialise {enc} (rclpy take, per input)"] = median_ms(lambda r=raw: deserialize_message(r, Image))
        msg = deserialize_message(raw, Image)
        dtype = np.uint16 if enc == "16UC1" else np.uint8
        out[f"numpy view of {enc} data (the core's decode)"] = median_ms(lambda m=msg, d=dtype: np.frombuffer(m.data, d))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    p.add_argument("--size", default="480x640")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.inner:
        print(json.dumps(measure(a)))
        return 0
    python = os.environ.get("EDGEFUSE_ROS2_PYTHON", str(ROOT / ".venv-ros2" / "bin" / "python"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    out = subprocess.run([python, __file__, "--inner", "--size", a.size, "--iterations", str(a.iterations)],
                         stdout=subprocess.PIPE, text=True, check=True)
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    load_after = [round(x, 2) for x in os.getloadavg()]
    m = machine_info()
    md = [f"# rclpy (Jazzy) message conversion per {a.size} image, median of {a.iterations}", "",
          f"`{m['command']}`", "", f"{m['date']}, {m.get('cpu_model', '')} x{m['cpu_count']}, "
          f"load {load_before} -> {load_after}", "", "| step | ms |", "| --- | ---: |"]
    md += [f"| {k} | {v:.3f} |" for k, v in rows.items()]
    write_result(Path(__file__).parent / "results", "ros2_conversion",
                 {"machine": m, "load_before": load_before, "load_after": load_after, "size": a.size,
                  "median_ms": rows}, "\n".join(md) + "\n", a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
