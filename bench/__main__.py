"""`python -m bench`: every benchmark, one after the other, as Markdown tables (docs/benchmarks.md).

    python -m bench              # the full run (about 6 minutes on 2 cores)
    python -m bench --quick      # a smoke run: small turn counts, short durations (the test suite runs it)
    python -m bench --only turns cold
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import metadata

SECTIONS = ("turns", "cold", "sam", "serve", "stream", "widget")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        cpu = platform.processor() or cpu
    versions = ", ".join(f"{name} {_version(name)}" for name in (
        "langchain", "langchain-core", "langgraph", "langgraph-checkpoint-aws", "langchain-community", "pynamodb",
        "boto3", "moto"))
    return (f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; {_load()}.\nPackages: {versions}.")


def _load() -> str:
    """The 1-minute load average: anything else running skews every figure (quote it with them)."""
    try:
        return f"load average {os.getloadavg()[0]:.2f}"
    except OSError:
        return "load average unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small turn counts, short durations")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--no-sam", action="store_true", help="skip `sam build` (the full run builds if sam is found)")
    parser.add_argument("--cold-runs", type=int, help="fresh processes per cold-start kind [3; quick 1]")
    parser.add_argument("--serve-seconds", type=float, help="seconds per ob-serve concurrency [10; quick 2]")
    args = parser.parse_args(argv)
    sections = [s for s in SECTIONS if s in args.only and not (s == "sam" and (args.no_sam or args.quick))]

    began = time.perf_counter()
    print(f"# python -m bench{' --quick' if args.quick else ''}\n\n{machine()}\n", flush=True)
    for section in sections:
        started = time.perf_counter()
        if section == "turns":
            from bench import inprocess

            inprocess.run(inprocess.QUICK if args.quick else inprocess.FULL)
        elif section == "cold":
            from bench import coldstart

            coldstart.measure(args.cold_runs or (1 if args.quick else 3))
        elif section == "sam":
            from bench import coldstart

            coldstart.sam_sizes()
        elif section == "serve":
            from bench import serve_load

            serve_load.measure((1, 10) if args.quick else (1, 10, 50), args.serve_seconds or (2 if args.quick else 10),
                               serve_load.SETUPS[-1:] if args.quick else serve_load.SETUPS)
        elif section == "stream":
            from bench import stream_latency

            stream_latency.run(quick=args.quick)
        elif section == "widget":
            from bench import widget

            widget.sizes()
        print(f"({section}: {time.perf_counter() - started:.0f} s)\n", flush=True)
    print(f"Total: {time.perf_counter() - began:.0f} s; {_load()} at the end.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
