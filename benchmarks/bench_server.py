"""The HTTP API under load, then fuzzed: `askdocs serve` on loopback in its own process.

    python benchmarks/bench_server.py                    # samples/docs in a temp store, model asks
    python benchmarks/bench_server.py --extractive       # asks without the LLM
    python benchmarks/bench_server.py --store ~/kb --clients 50 --seconds 60 --fuzz-seconds 120
    python benchmarks/bench_server.py --postgres --servers 2 --extractive --no-fuzz

Part 1: `--clients` concurrent clients (asyncio + httpx) for `--seconds`, each sending 90%
POST /search and 10% POST /ask (`--ask-share`), one request after another with a pause of
`--think` seconds on average between them (uniform over 0.5-1.5x: people read results before
they search again; `--think 0` is a closed loop that saturates the CPU). Reported as a
Markdown table: requests, errors, search latency p50/p99 against a single client's search
p50 measured first (goal: loaded p99 <= 10x single p50), ask latency and the time asks spent
queueing for the model (`timings.queue`) p50/p95. Requests still running when time is up are
cancelled and counted as unfinished, not as errors.

Part 2: `schemathesis run <server>/openapi.json` with the token header for `--fuzz-seconds`;
reported: the number of test cases, 5xx responses (must be 0) and schema violations.

The server is a separate process (its CPU use is not the clients'); on a shared 2-core machine
compare ratios within one run rather than absolute times. `--servers N` starts N servers on the
one store and spreads the clients over them; `--postgres` serves the samples from a PostgreSQL
+ pgvector started from the pgserver wheel (`--store` also takes a postgresql:// URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "docs"
TOKEN = "bench-token"
QUERIES = (
    "how do I descale the coffee maker",
    "compound interest formula",
    "how often should I water a houseplant",
    "what does the TLS handshake do",
    "lentil soup ingredients",
    "where does photosynthesis happen",
    "who invented the printing press",
    "chlorophyll absorbs which light",
    "certificate authority",
    "interest compounded monthly",
)
QUESTIONS = (
    "How do I descale the coffee maker?",
    "What does a certificate authority do?",
    "Where in the plant does photosynthesis happen?",
    "How often should a houseplant be watered?",
)


@dataclass
class Results:
    search: list[float] = field(default_factory=list)
    ask: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def askdocs_exe() -> str:
    beside = Path(sys.executable).with_name("askdocs")
    return str(beside) if beside.is_file() else "askdocs"


def sample_store(store: str) -> str:
    subprocess.run([askdocs_exe(), "ingest", str(SAMPLES), "--store", store], check=True)
    return store


def postgres_store(folder: Path) -> tuple[str, object]:
    """A PostgreSQL + pgvector from the pgserver wheel in `folder`; (URL of a new database,
    the server object to clean up)."""
    import pgserver
    import psycopg

    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder / "runtime"))
    server = pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE samples")
    return server.get_uri().replace("/postgres?", "/samples?", 1), server


def start_server(store: str, port: int, model: str | None, log: Path) -> subprocess.Popen[bytes]:
    command = [askdocs_exe(), "serve", "--store", str(store), "--port", str(port)]
    command += ["--token", TOKEN] + (["--model", model] if model else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKDOCS_")}
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start within 120 s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def one_request(
    client: httpx.AsyncClient, results: Results, args: argparse.Namespace
) -> None:
    is_ask = random.random() < args.ask_share
    started = time.perf_counter()
    try:
        if is_ask:
            body = {"question": random.choice(QUESTIONS), "extractive": args.extractive}
            body["decoding"] = {"max_tokens": args.max_tokens}
            response = await client.post("/ask", json=body, timeout=600)
        else:
            body = {"query": random.choice(QUERIES), "k": 10}
            response = await client.post("/search", json=body, timeout=120)
    except httpx.HTTPError as exc:
        results.error(type(exc).__name__)
        return
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        results.error(f"{'ask' if is_ask else 'search'} {response.status_code}")
    elif is_ask:
        results.ask.append(elapsed)
        results.queue.append(response.json()["timings"].get("queue", 0.0))
    else:
        results.search.append(elapsed)


async def client_loop(
    client: httpx.AsyncClient, results: Results, args: argparse.Namespace, deadline: float
) -> None:
    await asyncio.sleep(random.uniform(0, args.think))  # clients start staggered
    while time.monotonic() < deadline:
        await one_request(client, results, args)
        if args.think:
            await asyncio.sleep(random.uniform(0.5, 1.5) * args.think)


async def load(urls: list[str], args: argparse.Namespace) -> Results:
    """`args.clients` clients, spread evenly over the servers at `urls`."""
    results = Results()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=args.clients + 5)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers=headers, limits=limits)
            )
            for url in urls
        ]
        deadline = time.monotonic() + args.seconds
        tasks = [
            asyncio.create_task(client_loop(clients[n % len(urls)], results, args, deadline))
            for n in range(args.clients)
        ]
        _, pending = await asyncio.wait(tasks, timeout=args.seconds + 5)
        for task in pending:
            task.cancel()
        results.unfinished = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    return results


def single_client_search(url: str, n: int = 40) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for i in range(n):
            started = time.perf_counter()
            client.post("/search", json={"query": QUERIES[i % len(QUERIES)], "k": 10})
            times.append(time.perf_counter() - started)
    return statistics.median(times[5:])  # the first few warm caches


def warm_model(url: str, args: argparse.Namespace) -> None:
    body = {"question": QUESTIONS[0], "extractive": args.extractive, "decoding": {"max_tokens": 8}}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.post(f"{url}/ask", json=body, headers=headers, timeout=600)
    response.raise_for_status()


def spread(values: list[float], low: float, high: float, scale: float, unit: str) -> str:
    return f"{percentile(values, low) * scale:.2f} / {percentile(values, high) * scale:.2f} {unit}"


def load_table(results: Results, single: float, args: argparse.Namespace) -> str:
    ms = 1000.0
    p99 = percentile(results.search, 99)
    requests = len(results.search) + len(results.ask) + sum(results.errors.values())
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(results.errors.items())) or "0"
    rows = [
        ("clients x seconds", f"{args.clients} x {args.seconds:g} s"),
        ("think time between requests", f"{args.think:g} s on average"),
        ("ask mode", "extractive" if args.extractive else f"model ({args.model or 'default'})"),
        ("requests finished", f"{requests} ({len(results.search)} search, {len(results.ask)} ask)"),
        ("errors", errors),
        ("unfinished at the deadline", str(results.unfinished)),
        ("single-client search p50", f"{single * ms:.1f} ms"),
        ("search p50 / p99 under load", spread(results.search, 50, 99, ms, "ms")),
        ("search p99 / single p50", f"{p99 / single:.1f}x (goal <= 10x)"),
        ("ask p50 / p95", spread(results.ask, 50, 95, 1, "s")),
        ("ask queue p50 / p95", spread(results.queue, 50, 95, 1, "s")),
    ]  # fmt: skip
    lines = ["| measure | value |", "|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} |" for a, b in rows])


def fuzz(url: str, seconds: float, folder: Path) -> str:
    """schemathesis against the live schema; a table of what it found."""
    exe = shutil.which("schemathesis") or shutil.which("st")
    if exe is None:
        return "schemathesis is not installed (pip install 'askdocs[test]')"
    command = [
        exe, "run", f"{url}/openapi.json", "-H", f"Authorization: Bearer {TOKEN}",
        "--max-time", str(int(seconds)), "--workers", "1",
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance",
    ]  # fmt: skip
    run = subprocess.run(  # in the temp folder: schemathesis leaves a .schemathesis/ cache
        command, capture_output=True, text=True, timeout=seconds + 300, cwd=folder
    )
    out = run.stdout + run.stderr
    # The summary line ("4428 generated, 4428 passed"); warnings above it can say "generated".
    generated = re.search(r"^\s*(\d+) generated,", out, re.MULTILINE)
    server_errors = len(re.findall(r"\[5\d\d\]", out))
    schema = len(re.findall(r"Response violates schema", out))
    found = re.findall(r"❌ (ST\d+ [^:]+): (\d+)", out)
    rows = [
        ("test cases generated", generated.group(1) if generated else "?"),
        ("5xx responses", str(server_errors)),
        ("response schema violations", str(schema)),
        ("failures by kind", "; ".join(f"{k}: {n}" for k, n in found) or "none"),
        ("schemathesis exit code", str(run.returncode)),
    ]
    lines = ["| fuzzing | value |", "|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} |" for a, b in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="Store to serve: DIR or URL (default: samples/docs).")
    parser.add_argument("--servers", type=int, default=1, help="Servers on the one store.")
    parser.add_argument("--postgres", action="store_true", help="The samples in PostgreSQL.")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ask-share", type=float, default=0.1)
    parser.add_argument("--think", type=float, default=1.0, help="Mean pause per client, s.")
    parser.add_argument("--extractive", action="store_true", help="Ask without the LLM.")
    parser.add_argument("--model", help="Packaged model name or .gguf (default: config).")
    parser.add_argument("--max-tokens", type=int, default=64, help="Per generated answer.")
    parser.add_argument("--fuzz-seconds", type=float, default=180.0)  # 60 s can stall on /ask
    parser.add_argument("--no-fuzz", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="askdocs-bench-") as folder:
        database = None
        if args.postgres:
            url, database = postgres_store(Path(folder))
            store = sample_store(url)
        else:
            store = args.store or sample_store(str(Path(folder) / "store"))
        servers, urls = [], []
        try:
            for n in range(args.servers):
                port = free_port()
                log = Path(folder) / f"server-{n}.log"
                servers.append(start_server(store, port, args.model, log))
                urls.append(f"http://127.0.0.1:{port}")
            for url in urls:
                warm_model(url, args)
            single = single_client_search(urls[0])
            results = asyncio.run(load(urls, args))
            where = "PostgreSQL" if args.postgres else store
            print(f"## Load ({args.servers} server(s) on {where})\n")
            print(load_table(results, single, args))
            if not args.no_fuzz:
                print("\n## Fuzzing (schemathesis)\n")
                print(fuzz(urls[0], args.fuzz_seconds, Path(folder)))
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)
            if database is not None:
                database.cleanup()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
