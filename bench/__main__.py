"""`python -m bench` (make bench): the ModelFunction suite, then every other bench_*.py suite
(ApiFunction overhead, routing, ...) that defines main(argv)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench import run

run.main(sys.argv[1:])
for path in sorted(Path(__file__).parent.glob("bench_*.py")):
    module = importlib.import_module(f"bench.{path.stem}")
    suite = getattr(module, "main", None)
    if callable(suite):
        print(f"\n== {path.stem} ==", flush=True)
        suite([])
