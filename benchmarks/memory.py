"""Memory, bundle size and start-up of a DynMM bundle against its static model (issue 10,
"one copy of the weights"), with the real CLI in child processes.

    python benchmarks/memory.py [--dynamic dynmm-r34-nbt1d] [--static esanet-r34-nbt1d] \
        [--input-size 320x320] [--frames 30] [--threads 2] [--repeats 2]

1. `edgefuse export MODEL --input-size HxW` for both models (random init is fine: memory and
   start-up do not depend on the weights' values), each in its own process.
2. `edgefuse run --bundle B --camera synthetic --frames N` for each bundle, alternating
   (static, dynamic, static, ...) because the machine is shared; the peak RSS of each child
   comes from the kernel (os.wait4 -> ru_maxrss), as /usr/bin/time -v reports it. With
   --unshared the dynamic bundle also runs with --no-share-weights (one copy per session).
3. `edgefuse bench --bundle B` (few iterations) for each bundle, alternating: its start-up
   (load + warm-up, as `bench` reports it).
Before 2 and 3, one `edgefuse bench` per bundle builds this machine's cache of layout-optimised
graphs (edgefuse/runtime/runners/ort_cache.py, in $EDGEFUSE_CACHE_DIR, here inside the work
folder): its start-up is reported apart as the first start.
Goals: peak RSS and bundle size at most 1.3x the static model's, start-up at most 2x.
Writes benchmarks/results/memory_<dynamic>_vs_<static>_<HxW>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

GOAL_RSS, GOAL_SIZE, GOAL_STARTUP = 1.3, 1.3, 2.0
EDGEFUSE = [sys.executable, "-m", "edgefuse.cli.main"]


def child(cmd: list[str], log: Path) -> tuple[int, float]:
    """Run `cmd`; return (exit code, peak RSS in bytes of that child, from the kernel)."""
    with open(log, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024.0   # Linux: kilobytes


def export(model: str, size: str, out: Path, log: Path) -> None:
    if (out / "manifest.json").is_file():
        return
    rc, _ = child(EDGEFUSE + ["export", model, "--input-size", size, "--out", str(out), "--verify-frames", "1",
                              "--force"], log)
    if rc != 0:
        sys.exit(f"export of {model} failed (see {log})")


def bundle_bytes(bundle: Path) -> int:
    return sum(f.stat().st_size for f in bundle.iterdir() if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--dynamic", default="dynmm-r34-nbt1d")
    ap.add_argument("--static", default="esanet-r34-nbt1d")
    ap.add_argument("--input-size", default="320x320")
    ap.add_argument("--frames", type=int, default=30, help="frames per `edgefuse run`")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per bundle")
    ap.add_argument("--unshared", action="store_true", help="also run the dynamic bundle with --no-share-weights")
    ap.add_argument("--work", default=None, help="keep the bundles here (reused when present)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()

    tmp = None if args.work else tempfile.mkdtemp(prefix="edgefuse-memory-")
    work = Path(args.work or tmp)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "memory.log"
    tag = args.input_size
    bundles = {"static": work / f"{args.static}-{tag}", "dynamic": work / f"{args.dynamic}-{tag}"}
    try:
        for kind, model in (("static", args.static), ("dynamic", args.dynamic)):
            export(model, args.input_size, bundles[kind], log)
        variants = {"static": (bundles["static"], []), "dynamic": (bundles["dynamic"], [])}
        if args.unshared:
            variants["dynamic_unshared"] = (bundles["dynamic"], ["--no-share-weights"])
        os.environ["EDGEFUSE_CACHE_DIR"] = str(work / "cache")
        first: dict[str, dict] = {}
        for name, (bundle, extra) in variants.items():
            out = work / f"bench-first-{name}.json"
            rc, _ = child(EDGEFUSE + ["bench", "--bundle", str(bundle), "--frames", "1", "--warmup", "0",
                                      "--iterations", "1", "--threads", str(args.threads), "--json", str(out)]
                          + extra, log)
            if rc != 0:
                sys.exit(f"edgefuse bench on {bundle} failed (see {log})")
            first[name] = json.loads(out.read_text())["startup"]
        rss: dict[str, list[float]] = {v: [] for v in variants}
        startup: dict[str, list[dict]] = {v: [] for v in variants}
        loads = []
        for _ in range(args.repeats):
            for name, (bundle, extra) in variants.items():
                loads.append(os.getloadavg()[0])
                rc, peak = child(EDGEFUSE + ["run", "--bundle", str(bundle), "--camera", "synthetic",
                                             "--frames", str(args.frames), "--threads", str(args.threads),
                                             "--json"] + extra, log)
                if rc != 0:
                    sys.exit(f"edgefuse run on {bundle} failed (see {log})")
                rss[name].append(peak)
            for name, (bundle, extra) in variants.items():
                out = work / f"bench-{name}.json"
                rc, _ = child(EDGEFUSE + ["bench", "--bundle", str(bundle), "--frames", "3", "--warmup", "1",
                                          "--iterations", "3", "--threads", str(args.threads), "--json",
                                          str(out)] + extra, log)
                if rc != 0:
                    sys.exit(f"edgefuse bench on {bundle} failed (see {log})")
                startup[name].append(json.loads(out.read_text())["startup"])
        manifests = {k: json.loads((b / "manifest.json").read_text()) for k, b in bundles.items()}
        sizes = {k: bundle_bytes(b) for k, b in bundles.items()}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    rows = {}
    for name in variants:
        kind = "static" if name == "static" else "dynamic"
        rows[name] = {"bundle_bytes": sizes[kind], "peak_rss_bytes": med(rss[name]), "peak_rss_runs": rss[name],
                      "startup_s": med([s["total_s"] for s in startup[name]]),
                      "load_s": med([s.get("load_s", 0.0) for s in startup[name]]),
                      "warmup_s": med([s.get("warmup_s", 0.0) for s in startup[name]]),
                      "startup_runs": startup[name], "first_start_s": first[name]["total_s"]}
    s, d = rows["static"], rows["dynamic"]
    ratios = {"peak_rss": d["peak_rss_bytes"] / s["peak_rss_bytes"], "bundle": d["bundle_bytes"] / s["bundle_bytes"],
              "startup": d["startup_s"] / s["startup_s"]}
    goals = {"peak_rss": ratios["peak_rss"] <= GOAL_RSS, "bundle": ratios["bundle"] <= GOAL_SIZE,
             "startup": ratios["startup"] <= GOAL_STARTUP}
    w = manifests["dynamic"].get("weights") or {}
    result = {"dynamic": args.dynamic, "static": args.static, "input_size": args.input_size, "frames": args.frames,
              "threads": args.threads, "repeats": args.repeats, "rows": rows, "ratios": ratios, "goals": goals,
              "dynamic_weights": w, "loadavg_at_runs": loads, "machine": machine_info()}
    import onnxruntime

    result["machine"]["onnxruntime"] = onnxruntime.__version__
    name = f"memory_{args.dynamic}_vs_{args.static}_{args.input_size}"
    m = result["machine"]
    lines = [f"# Memory, bundle size, start-up: {args.dynamic} vs {args.static} at {args.input_size}", "",
             f"`{m['command']}` — {m['date']}, {m.get('cpu_model', m['processor'])}, {m['cpu_count']} cores, "
             f"onnxruntime {m['onnxruntime']}; `edgefuse run` on {args.frames} synthetic frames with "
             f"{args.threads} threads, median of {args.repeats} alternating runs; load average "
             f"{min(loads):.1f}-{max(loads):.1f}.", "",
             "| bundle | on disk | peak RSS of `edgefuse run` | start-up (load + warm-up) | first start on this machine |",
             "| :--- | ---: | ---: | ---: | ---: |"]
    for name_, r in rows.items():
        label = {"static": args.static, "dynamic": args.dynamic,
                 "dynamic_unshared": f"{args.dynamic}, --no-share-weights"}[name_]
        lines.append(f"| {label} | {r['bundle_bytes'] / 1e6:.0f} MB | {r['peak_rss_bytes'] / 1e9:.2f} GB | "
                     f"{r['startup_s']:.2f} s ({r['load_s']:.2f} + {r['warmup_s']:.2f}) | {r['first_start_s']:.2f} s |")
    lines += ["", f"dynamic / static: peak RSS {ratios['peak_rss']:.2f}x (goal <= {GOAL_RSS}: "
                  f"{'met' if goals['peak_rss'] else 'NOT met'}), bundle {ratios['bundle']:.2f}x (goal <= {GOAL_SIZE}: "
                  f"{'met' if goals['bundle'] else 'NOT met'}), start-up {ratios['startup']:.2f}x (goal <= "
                  f"{GOAL_STARTUP}: {'met' if goals['startup'] else 'NOT met'})."]
    lines.append("First start: the first `edgefuse bench` of each bundle on this machine, which builds its cache of "
                 "layout-optimised graphs (once per bundle, ONNX Runtime release and CPU).")
    if w:
        lines.append(f"The dynamic bundle's graphs reference {w['referenced_bytes'] / 1e6:.0f} MB of weights, "
                     f"stored once in {w['size_bytes'] / 1e6:.0f} MB ({w['tensors']} distinct tensors).")
    write_result(args.out, name, result, "\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
