"""Generation speed of every installed packaged GGUF model, and our overhead over raw llama.cpp.

    python benchmarks/bench_generation.py                      # every installed packaged model
    python benchmarks/bench_generation.py --models smollm2-135m --threads 1,2 --batch 128,512

For each model, thread count and batch size, in a fresh process (so RSS is the model's own):
an ~800-token chat prompt, then greedy generation. Reported: prompt tokens/s (prompt tokens
over time to first token), generation tokens/s (after the first token), time to first token
of `LlamaGenerator.stream` and of llama-cpp-python's low-level `Llama.__call__` on the very
same rendered prompt (both with an empty KV cache, same loaded model, alternating order,
median of --repeats), their ratio, the time to first token for a second question that shares
the system prompt (prefix reuse), load time and peak RSS.

Timings are wall-clock on whatever else the machine runs: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

FILLER = (
    "The Rhine rises in the Swiss Alps and flows north through Lake Constance before turning "
    "west along the border with Germany. Barges carry coal, grain and containers between "
    "Basel and Rotterdam, and the river has shaped trade in the region for centuries. "
)


def _messages(prompt_tokens: int, count: Any) -> tuple[list[Any], list[Any]]:
    """A system prompt of passages sized to about `prompt_tokens`, and two questions."""
    from askdocs.generation import Message

    passages: list[str] = []
    n = 0
    while count("\n".join(passages)) < prompt_tokens - 60:
        n += 1
        passages.append(f"[{n}] {FILLER}")
    system = "Answer from the numbered passages only and cite them like [1].\n" + "\n".join(
        passages
    )
    first = [Message("system", system), Message("user", "Where does the Rhine rise?")]
    second = [Message("system", system), Message("user", "What do barges carry?")]
    return first, second


def _ours(generator: Any, messages: list[Any], decoding: Any, *, cold: bool) -> Any:
    if cold:
        generator.reset_cache()
    for _ in generator.stream(messages, decoding):
        pass
    return generator.last_usage


def _raw(llama: Any, prompt: str, max_tokens: int) -> float:
    """Seconds to the first streamed token of `Llama.__call__`, from an empty KV cache."""
    llama.reset()
    started = time.perf_counter()
    first = 0.0
    for _ in llama(prompt, max_tokens=max_tokens, temperature=0.0, stream=True):
        first = first or time.perf_counter() - started
    return first


def measure(model: str, threads: int, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    from askdocs.generation import Decoding
    from askdocs.generation.llama import LlamaGenerator

    started = time.perf_counter()
    generator = LlamaGenerator(model, n_ctx=2048, n_batch=batch, n_threads=threads)
    load = time.perf_counter() - started
    first, second = _messages(args.prompt_tokens, generator.count_tokens)
    prompt = generator.render(first)
    decoding = Decoding(max_tokens=args.gen_tokens, repeat_penalty=1.0)
    ours, raw, usages = [], [], []
    for i in range(args.repeats):
        for which in ("ours", "raw") if i % 2 == 0 else ("raw", "ours"):
            if which == "raw":
                raw.append(_raw(generator._loaded.llama, prompt, args.gen_tokens))
            else:
                usages.append(_ours(generator, first, decoding, cold=True))
                ours.append(usages[-1].seconds_to_first_token)
    _ours(generator, first, decoding, cold=True)
    reuse = _ours(generator, second, decoding, cold=False)
    usage = usages[-1]
    generator.close()
    ttft = statistics.median(ours)
    return {
        "model": model,
        "threads": threads,
        "batch": batch,
        "prompt_tokens": usage.prompt_tokens,
        "prompt_tok_s": usage.prompt_tokens / ttft,
        "gen_tok_s": (usage.completion_tokens - 1) / (usage.seconds - usage.seconds_to_first_token),
        "ttft_s": ttft,
        "raw_ttft_s": statistics.median(raw),
        "ratio": ttft / statistics.median(raw),
        "reuse_ttft_s": reuse.seconds_to_first_token,
        "reused_tokens": reuse.extra["reused_prompt_tokens"],
        "load_s": load,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def installed_models() -> list[str]:
    from askdocs.errors import ModelLoadError
    from askdocs.generation.packaged import PACKAGED_MODELS, resolve_model

    found = []
    for name in PACKAGED_MODELS:
        try:
            resolve_model(name)
            found.append(name)
        except ModelLoadError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    return found


COLUMNS = (
    ("model", "{}"), ("threads", "{}"), ("batch", "{}"), ("prompt_tokens", "{}"),
    ("prompt_tok_s", "{:.1f}"), ("gen_tok_s", "{:.1f}"), ("ttft_s", "{:.2f}"),
    ("raw_ttft_s", "{:.2f}"), ("ratio", "{:.3f}"), ("reuse_ttft_s", "{:.2f}"),
    ("reused_tokens", "{}"), ("load_s", "{:.2f}"), ("rss_mb", "{:.0f}"),
)  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[name]) for name, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated; default: all installed")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch", default="512")
    parser.add_argument("--prompt-tokens", type=int, default=800)
    parser.add_argument("--gen-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "THREADS", "BATCH"), help="internal")
    args = parser.parse_args()
    if args.one:
        model, threads, batch = args.one
        print(json.dumps(measure(model, int(threads), int(batch), args)))
        return
    models = args.models.split(",") if args.models else installed_models()
    rows = []
    for model in models:
        for threads in args.threads.split(","):
            for batch in args.batch.split(","):
                rows.append(_child(model, threads, batch, args))
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))


def _child(model: str, threads: str, batch: str, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration in a fresh process, so peak RSS belongs to that model alone."""
    command = [sys.executable, __file__, "--one", model, threads, batch]
    command += ["--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens)]
    command += ["--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
