"""(1) Cold start: fresh process → first completion, the handler vs the bare floor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def one(kind: str, model_dir: Path) -> tuple[float, float]:
    """(seconds to first completion, peak RSS in MiB) of one fresh process."""
    env = {**os.environ, "BENCH_SPAWNED_AT": repr(time.time()), "POWERTOOLS_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cold_start_probe", kind, str(model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"cold start probe {kind} failed ({proc.returncode})")
    seconds = float(json.loads(out.decode().strip().splitlines()[-1])["seconds"])
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def run(model_dir: Path, repeats: int = 3) -> dict[str, Any]:
    samples: dict[str, list[tuple[float, float]]] = {"engine": [], "floor": []}
    one("floor", model_dir)  # warm the page cache so neither side pays for the first disk read
    for _ in range(repeats):
        for kind, values in samples.items():
            values.append(one(kind, model_dir))
    # Fastest of the interleaved runs: noise from other processes only ever adds time.
    med = {k: min(s for s, _ in v) for k, v in samples.items()}
    rss = {k: max(r for _, r in v) for k, v in samples.items()}
    return {
        "engine_s": med["engine"],
        "floor_s": med["floor"],
        "ratio": med["engine"] / med["floor"],
        "target_ratio_max": 1.15,
        "engine_peak_rss_mib": rss["engine"],
        "floor_peak_rss_mib": rss["floor"],
        "repeats": repeats,
    }
