"""llama.cpp builds side by side: does each run on this CPU, and at what speed?

    python benchmarks/bench_runtime.py                                # the installed build
    python benchmarks/bench_runtime.py --model qwen2.5-coder-1.5b \\
        --runtime avx2=/venvs/avx2/bin/python \\
        --runtime native=/venvs/native/bin/python \\
        --runtime all-variants=/venvs/dl/bin/python:/venvs/dl/lib/python3.11/site-packages/bin \\
        --xllamacpp /venvs/xl/bin/python

Each runtime is a Python interpreter with llama-cpp-python installed (built with the CMake
flags under test), optionally followed by `:DIR`, a directory of ggml CPU backend variants to
load first (a `GGML_BACKEND_DL` build: llama-cpp-python does not load them itself).
`--xllamacpp` measures the prebuilt `xllamacpp` wheel through its in-process server.

Every measurement runs in its own child process, so a build that crashes on this CPU is
reported with its signal instead of ending the benchmark. Per runtime: a ~370-token prompt
evaluated from an empty cache, then 64 greedy tokens (end of text ignored), best of
--repeats; the kernels llama.cpp reports; load time. Prints a markdown table and the CPU.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from typing import Any

PROMPT = ("The tide rises and falls twice a day. " * 40) + "When do spring tides come? Answer:"
GENERATE = 64

LLAMA_CHILD = """
import ctypes, json, os, sys, time
model, threads, repeats, backends = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
import llama_cpp
if backends:
    lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    ggml = ctypes.CDLL(os.path.join(lib_dir, "libggml.so.0"))  # the copy libllama uses
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all_from_path(backends.encode())
started = time.perf_counter()
llm = llama_cpp.Llama(model_path=model, n_ctx=2048, n_batch=512, n_ubatch=512,
                      n_threads=threads, n_threads_batch=threads, verbose=False)
load = time.perf_counter() - started
ids = llm.tokenize(PROMPT.encode(), add_bos=True)
best = [0.0, 0.0]
for _ in range(repeats):
    llm.reset()
    started = time.perf_counter()
    llm.eval(ids)
    best[0] = max(best[0], len(ids) / (time.perf_counter() - started))
    started = time.perf_counter()
    n = 0
    for _token in llm.generate(ids, temp=0.0):
        n += 1
        if n >= GENERATE:
            break
    best[1] = max(best[1], n / (time.perf_counter() - started))
print(json.dumps({"prompt_tokens": len(ids), "prompt_tps": best[0], "gen_tps": best[1],
                  "load_s": load, "kernels": llama_cpp.llama_print_system_info().decode()}))
"""

XLLAMACPP_CHILD = """
import json, sys, time
import xllamacpp as x
model, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
params = x.CommonParams()
params.model.path = model
params.n_ctx, params.n_batch, params.n_parallel = 2048, 512, 1
params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
started = time.perf_counter()
server = x.Server(params)
load = time.perf_counter() - started
best, n_prompt = [0.0, 0.0], 0
for i in range(repeats):
    reply = server.handle_completions({"prompt": PROMPT + str(i), "n_predict": GENERATE,
        "temperature": 0, "cache_prompt": False, "ignore_eos": True})
    t = (json.loads(reply) if isinstance(reply, str) else reply)["timings"]
    best = [max(best[0], t["prompt_per_second"]), max(best[1], t["predicted_per_second"])]
    n_prompt = t["prompt_n"]
print(json.dumps({"prompt_tokens": n_prompt, "prompt_tps": best[0], "gen_tps": best[1],
                  "load_s": load, "kernels": x.get_system_info(),
                  "listening": server.listening_address}))
"""


def measure(python: str, code: str, args: list[str], timeout: float) -> dict[str, Any]:
    header = f"PROMPT = {PROMPT!r}\nGENERATE = {GENERATE}\n"
    try:
        done = subprocess.run(
            [python, "-c", header + code, *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    if done.returncode < 0:
        return {"error": f"crashed: {signal.Signals(-done.returncode).name}"}
    if done.returncode > 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return {"error": f"exit {done.returncode}: {last[0][:120]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _kernels(info: str) -> str:
    """The instruction sets llama.cpp says it uses: 'AVX2 FMA ... AMX_INT8'."""
    names = [p.split("=")[0].strip() for p in info.split("|") if p.strip().endswith("= 1")]
    return " ".join(n.removeprefix("CPU : ") for n in names if n not in {"LLAMAFILE", "OPENMP"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="packaged name or .gguf")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--runtime", action="append", default=[], metavar="NAME=PYTHON[:DIR]")
    parser.add_argument("--xllamacpp", metavar="PYTHON", help="interpreter with xllamacpp")
    args = parser.parse_args()

    from askdocs.generation.packaged import resolve_model
    from askdocs.generation.runtime import cpu

    model = str(resolve_model(args.model))
    runtimes = [r.partition("=")[::2] for r in args.runtime] or [("installed", sys.executable)]
    common = [model, str(args.threads), str(args.repeats)]
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, spec in runtimes:
        python, _, backends = spec.partition(":")
        rows.append((name, measure(python, LLAMA_CHILD, [*common, backends], args.timeout)))
    if args.xllamacpp:
        rows.append(("xllamacpp", measure(args.xllamacpp, XLLAMACPP_CHILD, common, args.timeout)))

    this = cpu()
    print(f"CPU: {this.model} [{' '.join(this.flags)}]; model {args.model}; "
          f"{args.threads} thread(s); best of {args.repeats}\n")  # fmt: skip
    print("| runtime | runs? | prompt tok/s | generation tok/s | load s | kernels |")
    print("|---|---|---:|---:|---:|---|")
    for name, r in rows:
        if "error" in r:
            print(f"| {name} | no: {r['error']} | | | | |")
            continue
        extra = f" (opens {r['listening']})" if r.get("listening") else ""
        print(f"| {name} | yes{extra} | {r['prompt_tps']:.1f} | {r['gen_tps']:.1f} | "
              f"{r['load_s']:.2f} | {_kernels(r['kernels'])} |")  # fmt: skip


if __name__ == "__main__":
    main()
