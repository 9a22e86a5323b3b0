"""Hostile files: every one is read (or refused with a reason) in bounded time and memory.

The inputs are the ones a probe found: runs of dots or spaces that made sentence splitting and
heading parsing quadratic, nesting that made HTML parsing quadratic, zip bombs, UTF-16 without
a byte order mark. The slow cases run in a child process with a time limit that only a hang
would exceed (the old code needed minutes to hours for these sizes); no test asserts a speed.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askdocs.chunking import split
from askdocs.errors import UnreadableDocument
from askdocs.limits import MAX_DOCX_PARAGRAPHS, check_zip, html_depth
from askdocs.models import load_tokenizer
from askdocs.readers import read
from askdocs.text import sentence_spans

HANG = 60  # seconds; linear code needs well under one for each of these files


def read_and_split_in_child(path: Path) -> str:
    """Read and chunk `path` in a child process; its last line of output, or a hang failure."""
    code = (
        "import sys\n"
        "from askdocs.chunking import split\nfrom askdocs.models import load_tokenizer\n"
        "from askdocs.readers import read\n"
        "doc = read(sys.argv[1])\n"
        "print(len(split(doc, load_tokenizer(), size=200, overlap=32)))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=HANG
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading and chunking {path.name} did not finish in {HANG} s")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


ADVERSARIAL = {  # file name -> its text; built in the test (a 1 MB test id breaks exec)
    "dots.txt": lambda: "Ellipsis" + "." * 1_000_000 + "end",
    "bangs.txt": lambda: "Stop" + "!?" * 300_000 + " Go on.",
    "spaces.md": lambda: "# a" + " " * 1_000_000 + "b\n\nBody text.",
    "closing.md": lambda: "## a" + " \t" * 300_000 + "x #\n\nBody.",
    "title.md": lambda: "---\ntitle:" + " " * 500_000 + "x\n---\n\n# Heading\n\nText.",
    "cjk.txt": lambda: "文" + "。" * 500_000 + "字",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_runs_are_read_and_chunked_in_linear_time(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(ADVERSARIAL[name](), encoding="utf-8")
    assert int(read_and_split_in_child(path)) >= 1


def test_markdown_headings_keep_their_text_and_closing_sequences() -> None:
    doc_text = "# Title ##\n\n## Setup\t\n\n### C# tips\n\n#### ##\n"
    from askdocs.readers.markdown import _markdown_headings

    headings = [h.text for h in _markdown_headings(doc_text, 0)]
    assert headings == ["Title", "Setup", "C# tips"]  # "#### ##" is an empty heading


# --- html ------------------------------------------------------------------------------------


def test_deeply_nested_html_is_refused_quickly(tmp_path: Path) -> None:
    n = 200_000
    path = tmp_path / "nested.html"
    path.write_text("<html><body>" + "<div>" * n + "x" + "</div>" * n + "</body></html>")
    code = (
        "import sys\nfrom askdocs.readers import read\n"
        "try:\n    read(sys.argv[1])\nexcept Exception as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=HANG
    )
    assert "nested 200000 elements deep" in done.stdout and "nested.html" in done.stdout


def test_ordinary_nesting_and_omitted_end_tags_are_read(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    rows = "".join(f"<tr><td>cell {n}<td>more" for n in range(2000))
    paragraphs = "".join(f"<p>Paragraph {n} <br>" for n in range(2000))
    path.write_text(f"<html><body>{'<div>' * 100}<table>{rows}</table>{paragraphs}</body>")
    doc = read(path)
    assert "cell 1999" in doc.text and "Paragraph 1999" in doc.text


def test_html_depth_counts_explicitly_closed_nesting_only() -> None:
    assert html_depth("<ul><li>a<li>b</ul><p>x<p>y") == 1
    assert html_depth("<b>" * 600) == 600  # unclosed formatting tags nest (and clone) too


# --- zipped formats -----------------------------------------------------------------------------


def docx_bytes(document_xml: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal valid .docx around `document_xml`."""
    from tests.conftest import write_docx

    buffer = io.BytesIO()
    template = Path(write_docx(_tmp() / "t.docx", "Heading", "text")).read_bytes()
    with (
        zipfile.ZipFile(io.BytesIO(template)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            data = document_xml if info.filename == "word/document.xml" else source.read(info)
            out.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return buffer.getvalue()


def _tmp() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp())


def body(paragraphs: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraphs}</w:body></w:document>"
    ).encode()


def test_a_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    zeros = bytes(1 << 20)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("word/document.xml", body("<w:p/>"))
        with out.open("word/media/blob.bin", "w") as member:
            for _ in range(300):  # 300 MB of zeros, about 300 KB packed
                member.write(zeros)
    bomb.write_bytes(buffer.getvalue())
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(UnreadableDocument, match="inflates to more than 256 MB") as refused:
        read(bomb)
    assert refused.value.path == str(bomb)


def test_check_zip_stops_at_the_limit_while_inflating() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("a.xml", bytes(3 << 20))
    with pytest.raises(UnreadableDocument, match="zip bomb"):
        check_zip(buffer.getvalue(), "x.docx", limit=1 << 20)
    assert check_zip(buffer.getvalue(), "x.docx", limit=4 << 20) == {"a.xml": 3 << 20}


def test_a_docx_of_a_million_paragraphs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.docx"
    path.write_bytes(docx_bytes(body("<w:p/>" * (MAX_DOCX_PARAGRAPHS + 1))))
    with pytest.raises(UnreadableDocument, match="paragraphs"):
        read(path)


def test_a_docx_under_the_limits_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "fine.docx"
    text = "".join(f"<w:p><w:r><w:t>Line {n}</w:t></w:r></w:p>" for n in range(500))
    path.write_bytes(docx_bytes(body(text)))
    assert "Line 499" in read(path).text


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_text(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("Tides rise twice a day.\nÉté: 3 °C.\n".encode(encoding))
    assert read(path).text.startswith("Tides rise twice a day.\nÉté")


def test_binary_with_nul_bytes_is_still_binary(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(UnreadableDocument, match="binary"):
        read(path)


# --- fuzzing -------------------------------------------------------------------------------------

HOSTILE = st.text(
    alphabet=st.sampled_from(list(".!?…。 \t\n#-*>`~=_|<>/\"'()[]{}0123456789aZé文\u2029\f")),
    max_size=3000,
)


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_sentence_spans_cover_any_text_in_order(text: str) -> None:
    spans = sentence_spans(text)
    assert all(0 <= a < b <= len(text) for a, b in spans)
    assert all(b <= c for (_, b), (c, _) in itertools.pairwise(spans))


@settings(max_examples=40, deadline=10000, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE, st.sampled_from(["txt", "md", "html"]))
def test_readers_and_chunker_take_any_text(tmp_path_factory: pytest.TempPathFactory,
                                           text: str, kind: str) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("fuzz") / f"f.{kind}"
    path.write_text(text, encoding="utf-8")
    try:
        doc = read(path)
    except UnreadableDocument:
        return
    for chunk in split(doc, _TOKENIZER, size=64, overlap=8):
        assert doc.text[chunk.start : chunk.end].strip()


_TOKENIZER = load_tokenizer()
