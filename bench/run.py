"""The ModelFunction benchmarks, side by side in one run: prints a table, writes
bench/results/model.json.

    .venv/bin/python -m bench.run [--quick] [--only cold,decode,quant,embed,bandwidth]

Every figure is a ratio of two things measured interleaved in this run (best of several
alternating runs each), so a busy machine cannot favour one side; absolute numbers are printed
for context only.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

from bench import bandwidth, cold_start, decode, embed, quant
from bench.common import demo_dir, gpt2_124m_dir, load, write_result

SUITES = ("cold", "decode", "quant", "embed", "bandwidth")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and tokens")
    parser.add_argument("--only", default=",".join(SUITES))
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    repeats = 2 if args.quick else 5
    started = time.perf_counter()

    import torch  # noqa: TID251

    from cirrus_common.settings import Settings
    from cirrus_model.loader import configure_threads

    threads = configure_threads(Settings())
    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": threads,
        }
    }
    demo = demo_dir()
    demo_model, demo_tok = load(demo)
    big_model = big_tok = None
    if only & {"quant", "bandwidth"} or "decode" in only:
        big_model, big_tok = load(gpt2_124m_dir())

    if "cold" in only:
        print("cold start ...", flush=True)
        results["cold_start"] = cold_start.run(demo, repeats=repeats)
    if "decode" in only:
        print("decode ...", flush=True)
        results["decode_demo"] = decode.run(demo_model, demo_tok, tokens=128, repeats=repeats)
        results["decode_gpt2_124m"] = decode.run(
            big_model, big_tok, tokens=32 if args.quick else 48, repeats=repeats
        )
    int8_big = None
    if "quant" in only or "bandwidth" in only:
        print("int8 ...", flush=True)
        speed = quant.speed(big_model, big_tok, tokens=32 if args.quick else 48, repeats=repeats)
        int8_big = speed.pop("int8_model")
        results["int8_gpt2_124m"] = speed
        results["int8_demo_agreement"] = quant.agreement(demo_model, demo_tok)
    if "embed" in only:
        print("embeddings ...", flush=True)
        results["embeddings"] = embed.run(repeats=repeats)
    if "bandwidth" in only and int8_big is not None:
        print("bandwidth ...", flush=True)
        bw = bandwidth.copy_bandwidth()
        speed = results["int8_gpt2_124m"]
        results["bandwidth"] = {
            "copy_gib_per_s": bw / (1 << 30),
            "fp32": bandwidth.fraction(speed["fp32_tps"], big_model, bw),
            "int8": bandwidth.fraction(speed["int8_tps"], int8_big, bw),
        }
    results["total_seconds"] = time.perf_counter() - started
    path = write_result("model", results)
    print_table(results)
    print(f"\nwritten to {path}")
    return results


def print_table(r: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str]] = []
    if c := r.get("cold_start"):
        rows.append(
            (
                "cold start: first completion, handler / floor",
                f"{c['engine_s']:.2f}s / {c['floor_s']:.2f}s = {c['ratio']:.3f}x",
                "<= 1.15x",
            )
        )
        rows.append(
            (
                "cold start: peak RSS, handler / floor",
                f"{c['engine_peak_rss_mib']:.0f} / {c['floor_peak_rss_mib']:.0f} MiB",
                "",
            )
        )
    for key, label in (("decode_demo", "demo 4.3M"), ("decode_gpt2_124m", "gpt2-124M")):
        if d := r.get(key):
            for mode in ("greedy", "sampled"):
                rows.append(
                    (
                        f"decode {label} {mode}: engine / generate tok/s",
                        f"{d[f'engine_{mode}_tps']:.1f} / {d[f'generate_{mode}_tps']:.1f}"
                        f" = {d[f'ratio_{mode}']:.3f}x",
                        ">= 0.95x",
                    )
                )
            rows.append(
                (
                    f"decode {label}: greedy identical to generate",
                    str(d["greedy_output_identical"]),
                    "True",
                )
            )
    if q := r.get("int8_gpt2_124m"):
        rows.append(
            (
                "int8 / fp32 tok/s (gpt2-124M shape)",
                f"{q['int8_tps']:.1f} / {q['fp32_tps']:.1f} = {q['speedup']:.2f}x",
                ">= 1.5x",
            )
        )
    if a := r.get("int8_demo_agreement"):
        rows.append(
            (
                "int8 greedy next-token agreement (demo)",
                f"{a['agreement']:.3f} over {a['positions']} positions",
                "",
            )
        )
    if e := r.get("embeddings"):
        rows.append(
            (
                "embeddings sentences/s, batch 1 / 8 / 32",
                f"{e['batch_1_per_s']:.0f} / {e['batch_8_per_s']:.0f} / {e['batch_32_per_s']:.0f}",
                "",
            )
        )
    if b := r.get("bandwidth"):
        for mode in ("fp32", "int8"):
            m = b[mode]
            rows.append(
                (
                    f"decode vs bandwidth bound ({mode}, gpt2-124M)",
                    f"{m['fraction']:.2f} of {m['bound_tps']:.1f} tok/s"
                    f" ({m['weight_mib_per_token']:.0f} MiB/token,"
                    f" {b['copy_gib_per_s']:.1f} GiB/s)",
                    "",
                )
            )
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{'benchmark':<{width}}  {'measured':<52}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<52}  {target}")
    print(f"total {r['total_seconds']:.0f}s on {r['machine']['threads']} threads")


if __name__ == "__main__":
    main()
