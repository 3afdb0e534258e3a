"""`make bench`: time and peak memory of each step on a generated organisation.

python -m bench                 # 1,000 people, 52 weeks (data cached in bench/cache/)
python -m bench --people 100    # a quick check
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench.steps import run

HERE = Path(__file__).parent
TARGETS = {"weekly_seconds": 15.0, "weekly_rss_mb": 2048.0, "speedup_vs_baseline": 20.0, "team_query_ms": 300.0}


def step(name: str, data: Path, people: int, weeks: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=run, args=(name, str(data), people, weeks, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=52)
    args = parser.parse_args()
    data = HERE / "cache" / f"org-{args.people}x{args.weeks}" / "data"
    results = []
    if not (data / "timeaudit.toml").exists():
        print(f"generating {args.people} people x {args.weeks} weeks (cached for later runs)...", flush=True)
        results.append(step("generate", data, args.people, args.weeks))
    for name in ("weekly", "team_page", "audit", "report", "compact", "baseline"):
        print(f"running {name}...", flush=True)
        results.append(step(name, data, args.people, args.weeks))
    by = {r["step"]: r for r in results}
    speedup = by["baseline"]["aggregation_seconds"] / by["weekly"]["seconds"]
    verdict = {
        "weekly_seconds": (by["weekly"]["seconds"], by["weekly"]["seconds"] <= TARGETS["weekly_seconds"]),
        "weekly_rss_mb": (by["weekly"]["peak_rss_mb"], by["weekly"]["peak_rss_mb"] <= TARGETS["weekly_rss_mb"]),
        "speedup_vs_baseline": (speedup, speedup >= TARGETS["speedup_vs_baseline"]),
        "team_query_ms": (
            max(by["team_page"]["team_weekly_ms"], by["team_page"]["team_filters_ms"]),
            max(by["team_page"]["team_weekly_ms"], by["team_page"]["team_filters_ms"]) <= TARGETS["team_query_ms"],
        ),
    }
    print(f"\n{'step':<12} {'seconds':>9} {'peak RSS MB':>12}  detail")
    for r in results:
        detail = {k: v for k, v in r.items() if k not in ("step", "seconds", "peak_rss_mb")}
        print(f"{r['step']:<12} {r['seconds']:>9.2f} {r['peak_rss_mb']:>12.0f}  {json.dumps(detail, default=str)}")
    print(
        f"\nweekly metrics vs pandas baseline: {speedup:.1f}x faster (same numbers: "
        f"{by['baseline']['max_abs_difference_hours']})"
    )
    for name, (value, ok) in verdict.items():
        print(f"  {name:<22} {value:>10.2f}  target {TARGETS[name]:>8}  {'met' if ok else 'NOT MET'}")
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": mp.cpu_count(),
        "people": args.people,
        "weeks": args.weeks,
        "steps": results,
        "speedup_vs_baseline": speedup,
        "targets": {k: {"value": v, "met": ok} for k, (v, ok) in verdict.items()},
    }
    (HERE / "results.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
