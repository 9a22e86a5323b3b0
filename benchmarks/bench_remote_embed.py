"""Ingest throughput with the local embedder against 1 and 2 remote embedders, in one run.

    python benchmarks/bench_remote_embed.py [--docs 300] [--data ../shared/data]

The remote embedders are `askdocs serve` processes on loopback (each embeds with the packaged
model on this machine's cores); the client is `[embedding] backend = "remote"`. Each
configuration ingests the same first `--docs` SciFact documents into a fresh store. Also
measured: the round trip of one short text, local against remote, which is the per-request
overhead a faster embedding server (a GPU) cannot remove.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cpu import cpu_name

from askdocs import config
from askdocs.evaluate import corpus_documents, load_beir
from askdocs.kb import KnowledgeBase

TOKEN = "bench-token"


def serve(folder: Path, n: int) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASKDOCS_")}
    log = (folder / f"serve-{n}.log").open("wb")
    process = subprocess.Popen(
        ["askdocs", "serve", "--store", str(folder / f"server-{n}"), "--port", str(port),
         "--token", TOKEN], stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"askdocs serve did not start: see {log.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    scifact = (args.data / "scifact").resolve()
    documents = corpus_documents(load_beir(scifact), scifact.name)[: args.docs]
    rows = []
    with tempfile.TemporaryDirectory(prefix="askdocs-remote-") as tmp:
        folder = Path(tmp)
        servers = [serve(folder, n) for n in range(2)]
        try:
            configs = [
                ("local (packaged model, in process)", {}),
                ("remote, 1 askdocs serve", {"urls": [servers[0][1]]}),
                ("remote, 2 askdocs serve", {"urls": [s[1] for s in servers]}),
            ]
            for n, (name, remote) in enumerate(configs):
                changes: dict[str, object] = {"store": str(folder / f"store-{n}")}
                if remote:
                    changes |= {"embedding.backend": "remote", "embedding.api_key": TOKEN,
                                "embedding.urls": remote["urls"]}  # fmt: skip
                settings = config.load(changes, environ={})
                with KnowledgeBase.open(settings) as kb:
                    embedder = kb.embedder
                    one = []
                    for _ in range(30):
                        start = time.perf_counter()
                        embedder.embed(["how do I descale the machine"])
                        one.append(time.perf_counter() - start)
                    report = kb.ingest_documents(documents)
                rows.append((name, report.chunks, report.seconds, statistics.median(one)))
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait(30)
    print(f"\nCPU: {cpu_name()}, {os.cpu_count()} vCPU; {args.docs} SciFact documents; "
          "command: python benchmarks/bench_remote_embed.py\n")  # fmt: skip
    print("| embedder | chunks | ingest s | chunks/s | vs local | one short text ms |")
    print("|---|---:|---:|---:|---:|---:|")
    base = rows[0][1] / rows[0][2]
    for name, chunks, seconds, one in rows:
        rate = chunks / seconds
        print(f"| {name} | {chunks} | {seconds:.1f} | {rate:.1f} | {rate / base:.2f}x | "
              f"{one * 1000:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
