"""Two `askdocs eval retrieval --json` outputs side by side, with paired significance.

    askdocs eval retrieval DIR --json > float.json
    ASKDOCS_EMBEDDING__INT8=true askdocs eval retrieval DIR --json > int8.json
    python benchmarks/compare_runs.py float.json int8.json [--metric ndcg@10]

For each mode both runs scored, prints the mean metric of each, the difference (B - A) and
the p-value of Fisher's paired randomization test over the queries
(`askdocs.evaluate.paired_randomization_test`). The runs must cover the same split.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from askdocs.evaluate import paired_randomization_test


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path, help="the baseline run (JSON)")
    parser.add_argument("b", type=Path, help="the run compared with it (JSON)")
    parser.add_argument("--metric", default="ndcg@10")
    args = parser.parse_args(argv)
    a, b = load(args.a), load(args.b)
    if (a["collection"], a["split"]) != (b["collection"], b["split"]):
        print("the runs are on different collections or splits", file=sys.stderr)
        return 2
    by_mode = {r["mode"]: r for r in b["results"]}
    print(f"{a['collection']} {a['split']}, {a['queries']} queries, {args.metric}")
    print(f"A: {a['store']}\nB: {b['store']}\n")
    print("| mode | A | B | B - A | p |\n|---|---:|---:|---:|---:|")
    for ra in a["results"]:
        rb = by_mode.get(ra["mode"])
        if rb is None:
            continue
        qids = sorted(ra["per_query"])
        xs = [ra["per_query"][q][args.metric] for q in qids]
        ys = [rb["per_query"][q][args.metric] for q in qids]
        mean_a, mean_b = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
        p = paired_randomization_test(xs, ys)
        print(f"| {ra['mode']} | {mean_a:.4f} | {mean_b:.4f} | {mean_b - mean_a:+.4f} | {p:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
