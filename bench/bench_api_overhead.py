"""In-process overhead of ApiFunction: the real Lambda handler (Powertools decorators, Mangum,
FastAPI, strict JSON, key check, validation, response shaping) with a backend that answers
at once, against a bare Lambda handler that returns the same JSON. Both run interleaved in
one process over the same event so machine noise hits them alike.

    .venv/bin/python -m bench.bench_api_overhead [--events 3000]

Target (issue 3): at most 1 ms added at p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args(argv)

    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CirrusBench")
    os.environ["CIRRUS_AUTH_ENABLED"] = "true"
    os.environ["CIRRUS_KEYS_TABLE"] = "bench"
    import cirrus_api.app as api_app
    from cirrus_api.dispatch import Dispatcher
    from cirrus_common.observability import logger
    from cirrus_common.settings import get_settings
    from cirrus_local.functions import LocalLambdaContext
    from tests.fakes import ScriptedBackend

    class MemoryKeys:
        def verify(self, plaintext: str) -> object | None:
            return object() if plaintext == "sk-cirrus-EXAMPLE-not-a-real-key" else None

    backend = ScriptedBackend()
    api_app.build_dispatcher = lambda _s: Dispatcher({"lambda": backend})  # type: ignore[assignment]
    api_app.build_verifier = lambda _s: MemoryKeys()  # type: ignore[assignment]
    get_settings.cache_clear()
    api_app._mangum.cache_clear()
    # Log lines and EMF documents are written (CloudWatch would read them) but not shown.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
    for handler in logger("cirrus-api").handlers:
        handler.setStream(devnull)  # type: ignore[attr-defined]

    event = json.loads((ROOT / "events" / "api-chat-completions.json").read_text())
    # Without the authorizer's context the app checks the key itself: the heavier path.
    del event["requestContext"]["authorizer"]
    context = LocalLambdaContext("ApiFunction")

    full = api_app.handler
    sample = full(event, context)
    body_json = sample["body"]
    headers = sample["headers"]

    def bare(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        body = json.loads(body_json)  # rebuild the same JSON each time, as a handler would
        return {"statusCode": 200, "headers": headers, "body": json.dumps(body)}

    stdout = sys.stdout
    sys.stdout = devnull  # EMF is printed per invocation
    full_us: list[float] = []
    bare_us: list[float] = []
    try:
        for i in range(args.events + 200):
            for fn, out in ((full, full_us), (bare, bare_us)):
                start = time.perf_counter_ns()
                fn(event, context)
                elapsed = (time.perf_counter_ns() - start) / 1000
                if i >= 200:  # warm-up
                    out.append(elapsed)
    finally:
        sys.stdout = stdout
    result = {
        "events": args.events,
        "full_p50_us": statistics.median(full_us),
        "full_p99_us": _quantile(full_us, 0.99),
        "bare_p50_us": statistics.median(bare_us),
        "bare_p99_us": _quantile(bare_us, 0.99),
    }
    result["added_p50_us"] = result["full_p50_us"] - result["bare_p50_us"]
    result["added_p99_us"] = result["full_p99_us"] - result["bare_p99_us"]
    result["target_p50_us"] = 1000.0
    result["meets_target"] = result["added_p50_us"] <= 1000.0
    print(f"API overhead over {args.events} events (µs)")
    print(f"{'handler':<28}{'p50':>10}{'p99':>10}")
    for label, key in (
        ("full (Powertools+Mangum+app)", "full"),
        ("bare Lambda handler", "bare"),
        ("added", "added"),
    ):
        print(f"{label:<28}{result[f'{key}_p50_us']:>10.1f}{result[f'{key}_p99_us']:>10.1f}")
    print(f"target: added p50 <= 1000 µs -> {'met' if result['meets_target'] else 'NOT met'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_overhead.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
