"""Everyday questions on samples/docs: are the answers correct and complete, and how fast?

    python benchmarks/bench_everyday.py                       # every question, default settings
    python benchmarks/bench_everyday.py --option style=short --option hops=2
    python benchmarks/bench_everyday.py --cli-sample 5 --out everyday.json

`benchmarks/everyday.jsonl` holds questions a person would ask of the sample documents (how-to,
why, summarise, compare, yes/no, tables, two-part, facts, and some the documents do not
answer), each with the key facts a good answer must contain: a list of facts, each a list of
acceptable phrasings matched case-insensitively in the answer (citation markers removed).

The sample is ingested into a fresh store; the default model is loaded once and every question
asked in this process (`KnowledgeBase.stream_ask`), so "first token" is the time from the
question to the first piece shown, with the model loaded. Verdicts: answerable questions are
"complete" (every fact present), "partial", "wrong" (answered, no fact) or "refused";
unanswerable ones are "refused" (correct) or "answered". `--cli-sample N` also runs
`askdocs ask --json` as a new process for the first N questions, timing the command from
launch to exit: model load, retrieval and the whole answer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "everyday.jsonl"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    for dash in "\u2010\u2011\u2012\u2013\u2014":
        text = text.replace(dash, "-")
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split())


def verdict(question: dict[str, Any], answered: bool, text: str) -> tuple[str, int]:
    """The verdict and how many facts the answer holds."""
    from askdocs.citations import strip_citations

    if not question["answerable"]:
        return ("refused" if not answered else "answered"), 0
    if not answered:
        return "refused", 0
    said = normalise(strip_citations(text))
    found = sum(any(normalise(p) in said for p in fact) for fact in question["facts"])
    if found == len(question["facts"]):
        return "complete", found
    return ("partial" if found else "wrong"), found


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    names = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln]
    return names[0] if names else "unknown CPU"


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        options[key] = int(value) if value.isdigit() else value
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--docs", type=Path, default=ROOT / "samples" / "docs")
    parser.add_argument("--option", action="append", default=[], help="ask option, key=value")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--cli-sample", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line]
    questions = questions[: args.limit] if args.limit else questions
    options = parse_options(args.option)

    from askdocs import KnowledgeBase, config
    from askdocs.answer import AskOptions, Final

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "kb"
        with KnowledgeBase.open(config.load({"store": str(store)}, environ={})) as kb:
            kb.ingest([args.docs])
            started = time.perf_counter()
            kb.generator  # noqa: B018 - load the model before the clock starts per question
            load = time.perf_counter() - started
            for q in questions:
                began = time.perf_counter()
                answer = None
                for event in kb.stream_ask(q["question"], AskOptions(**options)):
                    if isinstance(event, Final):
                        answer = event.answer
                assert answer is not None
                seconds = time.perf_counter() - began
                result, found = verdict(q, answer.answered, answer.text)
                rows.append({
                    "id": q["id"], "kind": q["kind"], "question": q["question"],
                    "verdict": result, "facts": f"{found}/{len(q['facts'])}",
                    "style": answer.style, "answer": answer.text, "note": answer.note,
                    "reason": answer.reason,
                    "first_token": answer.timings.get("time_to_first_token", 0.0),
                    "seconds": round(seconds, 2),
                })  # fmt: skip
                print(f"{result:9} {q['id']}: {answer.text[:100]!r}", flush=True)
        cli = [_cli(q, store, args.option) for q in questions[: args.cli_sample]]
    print(f"\nCPU: {machine()}; model load {load:.1f} s; options {options or 'defaults'}")
    print(f"command: python {' '.join(sys.argv)}\n")
    print(table(rows))
    if cli:
        print(f"\n`askdocs ask` from launch to exit, {len(cli)} questions: median "
              f"{statistics.median(cli):.1f} s, max {max(cli):.1f} s")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "cli_seconds": cli}, indent=1))


def _cli(question: dict[str, Any], store: Path, options: list[str]) -> float:
    flags = [f"--{k}={v}" for k, _, v in (o.partition("=") for o in options)]
    entry = shutil.which("askdocs")
    launcher = [entry] if entry else [sys.executable, "-c", "from askdocs.cli import main; main()"]
    command = [*launcher, "ask", question["question"], "--store", str(store), "--json", *flags]
    began = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    return time.perf_counter() - began


def table(rows: list[dict[str, Any]]) -> str:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    head = "| kind | n | complete | partial | wrong | refused wrongly | correct refusals | " \
           "answered wrongly | median first token s | median s |"  # fmt: skip
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind, group in [*sorted(by_kind.items()), ("all", rows)]:
        count = Counter(r["verdict"] for r in group)
        answerable = [r for r in group if r["kind"] != "unanswerable"]
        refused_wrongly = sum(r["verdict"] == "refused" for r in answerable)
        correct_refusals = sum(
            r["verdict"] == "refused" for r in group if r["kind"] == "unanswerable"
        )
        firsts = [r["first_token"] for r in group if r["first_token"]]
        lines.append(
            f"| {kind} | {len(group)} | {count['complete']} | {count['partial']} | "
            f"{count['wrong']} | {refused_wrongly} | {correct_refusals} | {count['answered']} | "
            f"{statistics.median(firsts) if firsts else 0:.1f} | "
            f"{statistics.median(r['seconds'] for r in group):.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
