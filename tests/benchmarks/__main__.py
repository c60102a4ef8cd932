"""Run the benchmark suite: `python -m tests.benchmarks [--quick] [--only SECTION ...] [--json PATH]`.

`--only load` runs scripted Chromium sessions against a `streamlit run` server (not part of the default
run: it takes minutes); `--compare before=/path/to/other/worktree` runs the same load against that
checkout too, for figures side by side.

Prints machine facts and a table of figures (median and spread over repeated runs); asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import logging
import time

from tests.benchmarks import browser, coldstart, gallery, load, overhead, shared, storage, throughput
from tests.benchmarks import compare as compare_grid
from tests.benchmarks.harness import as_json, machine_facts, render_table

SECTIONS = ("overhead", "throughput", "postgresql", "gallery", "scaling", "storage", "coldstart", "browser", "load", "compare")
DEFAULT = tuple(s for s in SECTIONS if s != "load")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller data (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--baseline", default="main", metavar="REF",
                        help="browser: the commit measured as 'before' beside this checkout (default: main)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="LABEL=PATH",
                        help="load: also run against these checkouts (e.g. before=/tmp/wt-before)")
    parser.add_argument("--sessions", type=int, default=3, help="load: concurrent browser sessions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    wanted = args.only or DEFAULT
    q = args.quick
    figures = []
    started = time.perf_counter()
    if "overhead" in wanted:
        figures += overhead.run(n=20 if q else 100)
    if "throughput" in wanted:
        figures += throughput.run(jobs=48 if q else 200, serial_sample=4 if q else 10)
    if "postgresql" in wanted:  # starts its own PostgreSQL server (tests/pg.py)
        figures += shared.run(jobs=64 if q else 400, limit=8 if q else 32, overhead_n=10 if q else 50)
    if "compare" in wanted:
        figures += compare_grid.run()
    if "gallery" in wanted:
        figures += gallery.run(characters=1_000 if q else 10_000, portraits=200 if q else 2_000)
    if "scaling" in wanted:
        figures += gallery.run(characters=10_000 if q else 100_000, portraits=2_000 if q else 20_000, section="scaling")
        figures += [f for f in overhead.run(n=20 if q else 50, scale_portraits=2_000 if q else 20_000)
                    if f.section == "scaling"]
    if "storage" in wanted:
        figures += storage.run(n=50 if q else 200, repeat=3 if q else 7)
    if "coldstart" in wanted:
        figures += coldstart.run(repeat=2 if q else 5)
    if "browser" in wanted:
        figures += browser.run(repeat=3 if q else 7, baseline=args.baseline)
    if "load" in wanted:
        compare = dict(item.split("=", 1) for item in args.compare)
        figures += load.run(sessions=args.sessions, rounds=2 if q else 4, characters=5 if q else 20,
                            portraits=4 if q else 12, compare=compare)
    facts = machine_facts()
    print(render_table(facts, figures))
    print(f"\n{len(figures)} figures in {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(as_json(facts, figures), fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
