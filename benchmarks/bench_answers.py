"""Answer quality and speed on multi-hop and span questions, each configuration in one run.

    python benchmarks/bench_answers.py                           # 2Wiki + XQuAD, 60 questions each
    python benchmarks/bench_answers.py --sets 2wiki --limit 100 --configs short,short+hops
    python benchmarks/bench_answers.py --data ../shared/data --out results.json

Configurations are `+`-joined: a style (`short`, `full`, `auto`) and options (`hops`: the
second retrieval of `askdocs.answer.hops` for every question; `autohops`: for the questions
`needs_bridge` picks, the default; neither: never; `rerank`: the configured reranker). Each set is
ingested once into a store under `--stores` (reused across runs), the default model is loaded
once, and every configuration answers the same questions, spread evenly over the file
(`askdocs.evaluate_answers.spread`). Scores are those of `askdocs eval answers`: SQuAD EM and
token F1, `contains_answer` (the gold span appears in the answer: how a full answer is
scored), citation accuracy (a cited passage holds the gold answer), false refusals, and the
median time to first token from the question (retrieval and every step included). On XQuAD
the refusal round (article removed) runs too, for correct refusals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from cpu import cpu_name

SETS = {
    "2wiki": ("2wikimultihopqa_dev500/2wikimultihopqa_dev500.squad.json", False),
    "xquad": ("xquad_en/xquad.en.json", True),  # (file, run the refusal round)
}
COLUMNS = (
    "f1",
    "exact_match",
    "contains_answer",
    "citation_accuracy",
    "false_refusal",
    "correct_refusal",
    "median_time_to_first_token",
    "seconds_per_question",
)


def options_for(config: str) -> dict[str, Any]:
    parts = config.split("+")
    options: dict[str, Any] = {"style": parts[0], "hops": 1}
    for part in parts[1:]:
        if part == "hops":
            options["hops"] = 2
        elif part == "autohops":
            options["hops"] = None
        elif part == "rerank":
            options["rerank"] = True
        else:
            raise SystemExit(f"unknown option {part!r} in configuration {config!r}")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).parents[1] / "../shared/data")
    parser.add_argument("--sets", default="2wiki,xquad")
    parser.add_argument("--configs", default="short,short+hops")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument(
        "--offset", type=int, default=0, help="another sample of the same size (0: the tuned one)"
    )
    parser.add_argument("--stores", type=Path, default=Path.home() / ".cache/askdocs-bench")
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from askdocs import config
    from askdocs.answer import AskOptions
    from askdocs.evaluate_answers import evaluate_answers
    from askdocs.generation import Decoding, open_generator
    from askdocs.kb import KnowledgeBase

    results: list[dict[str, Any]] = []
    decoding = Decoding(temperature=0.0, max_tokens=200)
    for name in args.sets.split(","):
        file, refusals = SETS[name]
        path = (args.data / file).resolve()
        settings = config.load(
            {"store": str(args.stores / name), "generation.model": args.model}, environ={}
        )
        with KnowledgeBase.open(settings) as kb:
            generator = open_generator(settings.generation)
            try:
                for cfg in args.configs.split(","):
                    options = AskOptions(**options_for(cfg), decoding=decoding)
                    started = time.perf_counter()
                    evaluation = evaluate_answers(
                        kb,
                        generator,
                        path,
                        limit=args.limit,
                        offset=args.offset,
                        options=options,
                        refusals=refusals,
                    )
                    wall = time.perf_counter() - started
                    row = {"set": name, "config": cfg, "questions": evaluation.questions,
                           "wall_s": round(wall, 1), **evaluation.metrics}  # fmt: skip
                    results.append(row)
                    print(_line(row), flush=True)
                    if args.out:
                        outcomes = [o.__dict__ if hasattr(o, "__dict__") else _fields(o)
                                    for o in evaluation.outcomes]  # fmt: skip
                        row["outcomes"] = outcomes
            finally:
                generator.close()
    print(f"\nCPU: {cpu_name()}; model: {args.model or 'default'}; limit {args.limit}, "
          f"offset {args.offset}; command: python {' '.join(sys.argv)}")  # fmt: skip
    print(_table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


def _fields(outcome: Any) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in outcome.__slots__}


def _line(row: dict[str, Any]) -> str:
    return f"{row['set']} {row['config']}: " + ", ".join(
        f"{c}={row.get(c, 0):.2f}" for c in COLUMNS
    )


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["set", "config", "n", "F1", "EM", "contains", "cit. acc.", "false ref.",
            "correct ref.", "median TTFT s", "s/question"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["set"], r["config"], str(r["questions"])]
        cells += [f"{r.get(c, 0):.1f}" if "time" not in c and "seconds" not in c
                  else f"{r.get(c, 0):.2f}" for c in COLUMNS]  # fmt: skip
        if not SETS[r["set"]][1]:
            cells[8] = "—"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
