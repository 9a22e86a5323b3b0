"""Ingest a generated corpus of hostile files: every file stored or named with a reason, no hang.

    python benchmarks/hostile_corpus.py                 # 120+ files in a temporary folder
    python benchmarks/hostile_corpus.py --out /tmp/hostile --keep

The corpus covers what a probe of askdocs tried: runs of dots, spaces and `#` at several sizes,
zip bombs and a million-paragraph .docx, deeply nested HTML, UTF-16 without a byte order mark,
truncated and fake PDFs, NUL bytes, invalid UTF-8, a name that is not UTF-8, a symlink loop,
unreadable files, unsupported suffixes, and ordinary files among them. One `askdocs ingest
--json` runs over it, in a child process with a time limit. Reported: files, stored, failed
with a reason, skipped as unsupported, silently missing (must be 0), peak RSS, wall time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

WORD_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body>{}</w:body></w:document>"
)
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxml'
    'formats-package.relationships+xml"/><Override PartName="/word/document.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
    'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
    '.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)


def docx(paragraphs: str, extra_mb: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("[Content_Types].xml", CONTENT_TYPES)
        out.writestr("_rels/.rels", RELS)
        out.writestr("word/document.xml", WORD_XML.format(paragraphs))
        if extra_mb:
            with out.open("word/media/blob.bin", "w") as member:
                for _ in range(extra_mb):
                    member.write(bytes(1 << 20))
    return buffer.getvalue()


def generate(root: Path) -> int:
    """Write the corpus under `root`; returns the number of files a user would count."""
    files: dict[str, bytes | str] = {}
    for size in (1_000, 30_000, 60_000, 300_000, 1_000_000):
        files[f"dots-{size}.txt"] = "Ellipsis" + "." * size + "end"
        files[f"spaces-{size}.md"] = "# a" + " " * size + "b"
        files[f"bangs-{size}.txt"] = "Wait" + "!?" * (size // 2) + " then."
        files[f"cjk-{size}.txt"] = "文" + "。" * size + "字"
        files[f"hashes-{size}.md"] = "#" * size + " title\n\ntext"
        files[f"one-line-{size}.txt"] = "word " * (size // 5)
    for n in (100_000, 10_000):
        files[f"headings-{n}.md"] = "".join(f"# H{i}\n\n" for i in range(n))
    for depth in (100, 600, 20_000, 200_000):
        files[f"nested-{depth}.html"] = "<div>" * depth + "x" + "</div>" * depth
    files["unclosed-b.html"] = "<b>x" * 2000 + "<p>y" * 2000
    files["bomb-300mb.docx"] = docx("<w:p/>", extra_mb=300)
    files["million-paragraphs.docx"] = docx("<w:p/>" * 1_000_000)
    files["empty-paragraphs.docx"] = docx("<w:p><w:r><w:t> </w:t></w:r></w:p>" * 1000)
    files["ok.docx"] = docx("<w:p><w:r><w:t>Ordinary text in a document.</w:t></w:r></w:p>")
    files["not-a-zip.docx"] = b"PK\x03\x04 broken"
    files["text-as.pdf"] = "this is not a pdf"
    files["truncated.pdf"] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >>"
    files["empty.txt"] = b""
    files["empty.md"] = b""
    files["nul.txt"] = b"text\x00with\x00nul"
    files["binary.txt"] = bytes(range(256)) * 100
    files["invalid-utf8.txt"] = b"caf\xe9 au lait \xff\xfe"
    files["utf16le-no-bom.txt"] = "Hello from UTF-16.\n".encode("utf-16-le") * 50
    files["utf16be-no-bom.txt"] = "Hello from UTF-16.\n".encode("utf-16-be") * 50
    files["utf16-bom.txt"] = "Hello with a BOM.\n".encode("utf-16")
    files["mixed.txt"] = "é".encode() + "é".encode("latin-1")
    files["crlf.txt"] = "line one\r\nline two\r" * 1000
    files["lone-surrogate.html"] = "<p>&#xD800; text</p>"
    files["script-only.html"] = "<script>" + "x" * 100_000 + "</script>"
    files["meta-charset.html"] = b'<meta charset="latin-1"><p>caf\xe9</p>'
    for n in range(40):
        files[f"ordinary-{n:02d}.txt"] = f"Note {n}. The harbour log lists {n * 7} boats.\n"
    for suffix in ("xyz", "bin", "exe", "doc"):
        files[f"unsupported.{suffix}"] = b"whatever"
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    (root / os.fsdecode(b"bad-name-\xff.txt")).write_text("a name that is not UTF-8")
    os.symlink("loop", root / "loop")
    (root / "locked.txt").write_text("mode 000")
    (root / "locked.txt").chmod(0)
    (root / "sub").mkdir()
    (root / "sub" / "inside.md").write_text("# Inside\n\nA file in a folder.")
    return len(files) + 4


def run(root: Path, store: Path, timeout: float) -> tuple[dict[str, object] | None, float, int]:
    started = time.perf_counter()
    command = [sys.executable, "-c", "from askdocs.cli import main; main()", "ingest", str(root)]
    command += ["--store", str(store)]
    try:
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started, 0
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    try:
        return json.loads(done.stdout), seconds, rss
    except json.JSONDecodeError:
        print(done.stderr[-3000:], file=sys.stderr)
        return {}, seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="where to write the corpus (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the store")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="askdocs-hostile-"))
    root, store = base / "corpus", base / "store"
    count = generate(root)
    report, seconds, rss = run(root, store, args.timeout)
    if report is None:
        print(f"| files | result |\n|---:|---|\n| {count} | HUNG: no result in {args.timeout} s |")
    else:
        stored = int(report.get("added", 0)) + int(report.get("unchanged", 0))
        failed = report.get("failed", [])
        skipped = report.get("skipped", [])
        named = stored + len(failed) + len(skipped)  # type: ignore[arg-type]
        print("| files | stored | failed, with a reason | skipped as unsupported | "
              "silently missing | peak RSS MiB | wall s |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {count} | {stored} | {len(failed)} | {len(skipped)} | "  # type: ignore[arg-type]
              f"{count - named} | {rss} | {seconds:.1f} |")  # fmt: skip
        for failure in failed:  # type: ignore[union-attr]
            print(f"- failed: {Path(failure['path']).name}: {failure['reason'][:140]}")
    if not args.keep:
        (root / "locked.txt").chmod(0o644)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
