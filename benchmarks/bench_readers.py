"""Compare PDF text extraction speed: pypdfium2 (what askdocs uses) against pypdf.

    PYTHONPATH=src python benchmarks/bench_readers.py [PDF] [--repeat N]

Without a PDF, a 50-page text-heavy one is generated with fpdf2. pypdf is not an askdocs
dependency; install it (`pip install pypdf`) to get its row, otherwise it is skipped.
Each row reports the best of N runs, so it measures parsing, not a cold disk cache.
A last line times the HTML reader on a generated 1 MB page.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WORDS = [
    *("light", "energy", "water", "carbon", "press", "type", "paper", "ink", "history"),
    *("signal", "network", "server", "certificate", "plant", "root", "soil", "leaf"),
    *("interest", "rate", "growth", "coffee", "filter"),
]


def make_pdf(path: Path, pages: int = 50) -> Path:
    """A PDF of `pages` pages, each filled with about 500 words of deterministic text."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for number in range(pages):
        pdf.add_page()
        words = [WORDS[(number * 7 + i * 3) % len(WORDS)] for i in range(500)]
        pdf.multi_cell(0, 5, f"Page {number + 1}. " + " ".join(words))
    pdf.output(str(path))
    return path


def extract_pypdfium2(path: Path) -> tuple[int, int]:
    import pypdfium2

    # From bytes, as askdocs does (it reads the file itself to enforce the size limit).
    pdf = pypdfium2.PdfDocument(path.read_bytes())
    try:
        chars = 0
        for page in pdf:
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
        return len(pdf), chars
    finally:
        pdf.close()


def extract_pypdf(path: Path) -> tuple[int, int]:
    import pypdf

    reader = pypdf.PdfReader(path)
    chars = sum(len(page.extract_text()) for page in reader.pages)
    return len(reader.pages), chars


def extract_askdocs(path: Path) -> tuple[int, int]:
    from askdocs.readers import read

    doc = read(path)
    return len(doc.pages), len(doc.text)


EXTRACTORS: dict[str, tuple[str, Callable[[Path], tuple[int, int]]]] = {
    "pypdfium2": ("pypdfium2", extract_pypdfium2),
    "pypdf": ("pypdf", extract_pypdf),
    "askdocs.readers.read": ("pypdfium2", extract_askdocs),
}


def best_time(
    extract: Callable[[Path], tuple[int, int]], path: Path, repeat: int
) -> tuple[float, int, int]:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        pages, chars = extract(path)
        timings.append(time.perf_counter() - started)
    return min(timings), pages, chars


def time_html(directory: Path, repeat: int) -> str:
    from askdocs.readers import read

    words = " ".join(["tidal", "power", "uses", "the", "rise", "and", "fall", "of", "seas"] * 8)
    block = (
        f"<div class='post'><h2>Part</h2><p>{words} <a href='#'>more</a> <em>note</em></p>"
        "<ul><li>one item</li><li>another item</li></ul></div>"
    )
    nav = "<nav>" + "<a href='/x'>menu entry</a>" * 300 + "</nav>"
    path = directory / "bench-1mb.html"
    path.write_text(f"<html><body>{nav}<main>{block * 2_500}</main></body></html>")
    seconds, _, _ = best_time(lambda p: (0, len(read(p).text)), path, repeat)
    size = path.stat().st_size / 1e6
    return f"askdocs.readers.read on a {size:.1f} MB HTML page: {seconds:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pdf", nargs="?", type=Path, help="PDF to read (default: generate one)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per parser; the best counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.pdf or make_pdf(Path(tmp) / "bench-50-pages.pdf")
        print(f"{path.name}: {path.stat().st_size / 1e3:.0f} kB, best of {args.repeat} runs\n")
        print("| parser | version | pages | seconds | pages/s | chars |")
        print("|---|---|---:|---:|---:|---:|")
        for name, (package, extract) in EXTRACTORS.items():
            try:
                version = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                print(f"| {name} | not installed | | | | |")
                continue
            seconds, pages, chars = best_time(extract, path, args.repeat)
            rate = pages / seconds
            print(f"| {name} | {version} | {pages} | {seconds:.3f} | {rate:,.0f} | {chars:,} |")
        print("\n" + time_html(Path(tmp), args.repeat))


if __name__ == "__main__":
    main()
