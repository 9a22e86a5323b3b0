"""Everyday questions on samples/docs: are the answers correct and complete, and how fast?

    python benchmarks/bench_everyday.py --out everyday.json        # every question, `askdocs ask`
    python benchmarks/bench_everyday.py --limit 5 -- --style full  # flags after -- go to ask
    python benchmarks/bench_everyday.py --in-process --option style=full --option hops=2

`benchmarks/everyday.jsonl` holds questions a person would ask of the sample documents, one
JSON object a line: `id`, `question`, `kind` (how-to, why, summarise, compare, yes-no, table,
two-part, fact, unanswerable), `answerable`, `source` and `facts`, the key facts a correct and
complete answer contains: each fact a list of acceptable phrasings, matched as substrings of
the answer text (citation markers removed), case-insensitively, after normalising whitespace,
Unicode dashes and quotes.

`samples/docs` is ingested into a temporary store (or into `--store`, which only adds what is
new or changed). By default every question runs `askdocs ask QUESTION --store DIR --json`
in a new process, one at a time, with the arguments after `--`; wall time is from launch to
exit (model load included) and time to first token is the answer's own
`timings.time_to_first_token` (from the question, with the model loaded). `--in-process`
opens the knowledge base and the generator once in this process, as `askdocs ask` does, and
calls `askdocs.answer.stream_answer` per question with the `--option key=value` pairs as
keyword arguments of `askdocs.answer.ask` (values parsed as JSON where they parse, else
strings; unknown keys are passed on, so the pipeline says what it does not know); wall time
is then from the question to the final answer and time to first token is measured here.

Verdicts: an answerable question is "correct and complete" when it was answered and every
fact matches, "partial" when some match, "no fact" when none do, "wrongly refused" when
refused; an unanswerable one is a "correct refusal" when refused, else "answered". A command
that fails is an "error". A Markdown table per kind and overall goes to stdout; every answer
with its verdict, the facts it missed and its timings goes to `--out` (JSON), written after
each question. Timings are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cpu import cpu_name

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "benchmarks" / "everyday.jsonl"
DOCS = ROOT / "samples" / "docs"
KINDS = (
    "how-to", "why", "summarise", "compare", "yes-no", "table", "two-part", "fact", "unanswerable",
)  # fmt: skip
COMPLETE, PARTIAL, NO_FACT = "correct and complete", "partial", "no fact"
WRONG_REFUSAL, RIGHT_REFUSAL, ANSWERED, ERROR = (
    "wrongly refused", "correct refusal", "answered", "error",
)  # fmt: skip
COLUMNS = (
    "kind", "n", "correct & complete", "partial", "no fact", "wrongly refused",
    "correct refusals", "answered unanswerable", "errors", "median wall s", "p90 wall s",
    "median TTFT s",
)  # fmt: skip
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
_QUOTES = {ord("\u2018"): "'", ord("\u2019"): "'", ord("\u201c"): '"', ord("\u201d"): '"'}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def normalise(text: str) -> str:
    """Lower case, NFKC, ASCII dashes and quotes, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_DASHES).translate(_QUOTES)
    return " ".join(text.split())


def load_questions(path: Path, limit: int | None) -> list[dict[str, Any]]:
    questions = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    for q in questions:
        if q["kind"] not in KINDS:
            raise SystemExit(f"{q['id']}: unknown kind {q['kind']!r}")
        if q["answerable"] != (q["kind"] != "unanswerable") or (q["answerable"] and not q["facts"]):
            raise SystemExit(f"{q['id']}: answerable questions need facts, unanswerable ones not")
    return questions[:limit] if limit else questions


def facts_in(text: str, facts: Sequence[Sequence[str]]) -> list[bool]:
    """Per fact: does one of its phrasings occur in `text`, citation markers removed?"""
    from askdocs.citations import strip_citations

    said = normalise(strip_citations(text))
    return [any(normalise(phrase) in said for phrase in fact) for fact in facts]


def verdict(question: dict[str, Any], answer: dict[str, Any] | None) -> str:
    if answer is None:
        return ERROR
    if not question["answerable"]:
        return ANSWERED if answer["answered"] else RIGHT_REFUSAL
    if not answer["answered"]:
        return WRONG_REFUSAL
    found = facts_in(answer["text"], question["facts"])
    return COMPLETE if all(found) else PARTIAL if any(found) else NO_FACT


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs as keyword arguments; values are JSON where they parse (2, true,
    null, 0.5), else strings (`style=full`)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option wants key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def askdocs_command() -> list[str]:
    entry = shutil.which("askdocs")
    return [entry] if entry else [sys.executable, "-c", "from askdocs.cli import main; main()"]


def ingest(docs: Path, store: Path) -> None:
    command = [*askdocs_command(), "ingest", str(docs), "--store", str(store), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"ingest failed ({done.returncode}): {done.stderr.strip()}")
    report = json.loads(done.stdout)
    say(f"ingested {docs} into {store}: {report['added']} added, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['chunks']} chunks")  # fmt: skip


def ask_cli(question: str, store: Path, extra: Sequence[str]) -> dict[str, Any]:
    """One `askdocs ask --json` in a new process, timed from launch to exit."""
    command = [*askdocs_command(), "ask", question, "--store", str(store), "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    answer = None
    error = ""
    if done.returncode:
        error = f"exit {done.returncode}: {done.stderr.strip()[-500:]}"
    else:
        try:
            answer = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            error = f"unreadable JSON ({exc}): {done.stdout[-300:]}"
    ttft = (answer or {}).get("timings", {}).get("time_to_first_token")
    return {"answer": answer, "wall": wall, "ttft": ttft, "error": error}


@contextmanager
def in_process(store: Path) -> Iterator[tuple[Any, Any, float]]:
    """The knowledge base and the generator, opened as `askdocs ask` opens them, and the
    seconds the generator took to load."""
    from askdocs import config
    from askdocs.generation import open_generator
    from askdocs.kb import KnowledgeBase

    with KnowledgeBase.open(config.load({"store": str(store)})) as kb:
        started = time.perf_counter()
        generator = open_generator(kb.settings.generation, config.api_key(kb.settings.generation))
        loaded = time.perf_counter() - started
        try:
            yield kb, generator, loaded
        finally:
            generator.close()


def ask_in_process(kb: Any, generator: Any, question: str, options: dict[str, Any]) -> Any:
    """`stream_answer` with `options` as keyword changes; time to the first generated piece."""
    from askdocs.answer import Final, Token, stream_answer
    from askdocs.generation import decoding_from

    changes = {"decoding": decoding_from(kb.settings.generation), **options}  # as the CLI does
    started = time.perf_counter()
    ttft = None
    answer = None
    for event in stream_answer(kb, generator, question, **changes):
        if isinstance(event, Token) and ttft is None:
            ttft = time.perf_counter() - started
        elif isinstance(event, Final):
            answer = json.loads(json.dumps(dataclasses.asdict(event.answer), default=str))
    wall = time.perf_counter() - started
    return {"answer": answer, "wall": wall, "ttft": ttft, "error": ""}


def record(question: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    answer = run["answer"]
    found = facts_in(answer["text"], question["facts"]) if answer else []
    found = found or [False] * len(question["facts"])
    return {
        "id": question["id"], "kind": question["kind"], "question": question["question"],
        "source": question.get("source", ""), "verdict": verdict(question, answer),
        "facts_found": sum(found), "facts": len(question["facts"]),
        "missing": [fact for fact, ok in zip(question["facts"], found, strict=True) if not ok],
        "answered": answer["answered"] if answer else None,
        "text": answer["text"] if answer else "", "reason": (answer or {}).get("reason", ""),
        "note": (answer or {}).get("note", ""), "style": (answer or {}).get("style", ""),
        "draft": (answer or {}).get("draft", ""),
        "cited": [f"[{c['number']}] {c['path']}" + (f" p.{c['page']}" if c.get("page") else "")
                  for c in (answer or {}).get("citations", [])],
        "sentence_problems": [p for s in (answer or {}).get("sentences", [])
                              for p in s.get("problems", [])],
        "wall_seconds": round(run["wall"], 3),
        "time_to_first_token": round(run["ttft"], 3) if run["ttft"] is not None else None,
        "timings": (answer or {}).get("timings", {}), "tokens": (answer or {}).get("tokens", {}),
        "error": run["error"],
    }  # fmt: skip


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups = [(kind, [r for r in rows if r["kind"] == kind]) for kind in KINDS]
    out = []
    for kind, group in [*((k, g) for k, g in groups if g), ("all", rows)]:
        walls = [r["wall_seconds"] for r in group]
        firsts = [r["time_to_first_token"] for r in group if r["time_to_first_token"] is not None]

        def count(name: str, group: list[dict[str, Any]] = group) -> int:
            return sum(r["verdict"] == name for r in group)

        out.append({
            "kind": kind, "n": len(group), "correct & complete": count(COMPLETE),
            "partial": count(PARTIAL), "no fact": count(NO_FACT),
            "wrongly refused": count(WRONG_REFUSAL), "correct refusals": count(RIGHT_REFUSAL),
            "answered unanswerable": count(ANSWERED), "errors": count(ERROR),
            "median wall s": statistics.median(walls), "p90 wall s": p90(walls),
            "median TTFT s": statistics.median(firsts) if firsts else None,
        })  # fmt: skip
    return out


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return "—" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |"]
    lines.append("|" + "|".join("---:" if i else "---" for i in range(len(COLUMNS))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        usage="%(prog)s [options] [-- EXTRA ASK ARGS]",
    )
    parser.add_argument("--store", type=Path, default=None, help="default: a temporary store")
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--limit", type=int, default=None, help="the first N questions")
    parser.add_argument("--out", type=Path, default=None, help="every answer, as JSON")
    parser.add_argument("--in-process", action="store_true", help="load the model once, here")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --in-process: a keyword argument of askdocs.answer.ask",
    )
    args = parser.parse_args(argv)
    if args.option and not args.in_process:
        parser.error("--option needs --in-process; give `askdocs ask` flags after --")
    if extra and args.in_process:
        parser.error("arguments after -- go to `askdocs ask`: drop --in-process or use --option")
    questions = load_questions(args.questions, args.limit)
    options = parse_options(args.option)

    from askdocs import config

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="everyday-") as tmp:
        store = args.store or Path(tmp) / "kb"
        ingest(args.docs, store)
        model = config.load({"store": str(store)}).generation.model
        mode = "in-process" if args.in_process else "askdocs ask per question"
        meta: dict[str, Any] = {
            "command": shlex.join(["python", *sys.argv]), "cpu": cpu_name(), "mode": mode,
            "model": model, "options": options, "ask_args": extra,
            "questions_file": str(args.questions), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }  # fmt: skip
        rows: list[dict[str, Any]] = []
        with in_process(store) if args.in_process else _nothing() as opened:
            if opened is not None:
                kb, generator, meta["model_load_seconds"] = opened
                say(f"model {model} loaded in {meta['model_load_seconds']:.1f} s")
            for n, q in enumerate(questions, 1):
                if opened is not None:
                    run = ask_in_process(kb, generator, q["question"], options)
                else:
                    run = ask_cli(q["question"], store, extra)
                rows.append(record(q, run))
                r = rows[-1]
                say(f"{n}/{len(questions)} {r['verdict']:20} {r['wall_seconds']:5.1f} s "
                    f"{q['id']}: {(r['error'] or r['text'])[:90]!r}")  # fmt: skip
                meta["wall_seconds"] = round(time.perf_counter() - began, 1)
                if args.out:
                    _write(args.out, meta, summary(rows), rows)
    meta["wall_seconds"] = round(time.perf_counter() - began, 1)
    rows_summary = summary(rows)
    if args.out:
        _write(args.out, meta, rows_summary, rows)
    print(f"\nCPU: {meta['cpu']}; model {model}; {mode}; {len(rows)} questions in "
          f"{meta['wall_seconds']:.0f} s; command: {meta['command']}\n")  # fmt: skip
    print(table(rows_summary))
    if args.out:
        print(f"\nanswers and verdicts: {args.out}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _write(path: Path, meta: dict[str, Any], rows_summary: Any, rows: Any) -> None:
    data = {**meta, "summary": rows_summary, "results": rows}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
