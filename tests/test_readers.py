"""Tests for askdocs.readers, on fixture files written with the real libraries."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import pypdfium2
import pytest
from fpdf import FPDF
from fpdf.enums import EncryptionMethod

from askdocs.errors import UnreadableDocument
from askdocs.readers import SUPPORTED_SUFFIXES, read
from askdocs.types import Document, Heading

PDF_PAGES = (
    "Aardvarks dig burrows at night.\nThey eat ants and termites.",
    "Beavers build dams from branches and mud.",
    "Capybaras are the largest living rodents.",
)

MARKDOWN = """\
# Field notes

Some intro text.

## Setup ##

```bash
echo hi
# this comment is code, not a heading
```

~~~
plain
## also code
~~~

Results
-------

- a list item
---

#hashtag is not a heading

### Deep dive
"""

HTML = """\
<!doctype html>
<html>
<head>
  <title>  Tidal   energy  </title>
  <style>.navlink { color: stylecolorword; }</style>
  <script>var scriptword = 1;</script>
</head>
<body>
  <header><a href="/">Sitebannerword</a> <h1>Sitenameword</h1></header>
  <nav><ul><li><a href="/a">Navlinkword</a></li><li>Navotherword</li></ul></nav>
  <div role="navigation">Rolenavword</div>
  <aside>Asideword</aside>
  <main>
    <article>
      <header><h1>How   tides turn turbines</h1></header>
      <p>Tides rise and fall <b>twice</b> a day,
         driven by the Moon.</p>
      <p hidden>Hiddenword</p>
      <p style="display: none">Invisibleword</p>
      <h2>Barrages</h2>
      <p>A barrage holds water<br>behind a dam.</p>
      <ul><li>La Rance</li><li>Sihwa Lake</li></ul>
      <pre>  x = 1
    y = 2</pre>
      <table><tr><th>Site</th><th>MW</th></tr><tr><td>Sihwa</td><td>254</td></tr></table>
      <form><label>Formword</label><button>Buttonword</button></form>
    </article>
  </main>
  <footer>Footerword &copy; 2024</footer>
  <noscript>Noscriptword</noscript>
</body>
</html>
"""

BOILERPLATE_WORDS = [
    "stylecolorword",
    "scriptword",
    "Sitebannerword",
    "Sitenameword",
    "Navlinkword",
    "Navotherword",
    "Rolenavword",
    "Asideword",
    "Hiddenword",
    "Invisibleword",
    "Formword",
    "Buttonword",
    "Footerword",
    "Noscriptword",
]


def write_pdf(path: Path, pages: tuple[str, ...], *, title: str | None = None) -> Path:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path, *, core_title: str = "") -> Path:
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_paragraph("Harbour Survey", style="Title")
    document.add_heading("Methods", level=1)
    document.add_paragraph("We counted boats at dawn.")
    document.add_paragraph("")  # empty paragraphs must not leave gaps
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("Boat", "Count"), ("Ketch", "7")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_heading("Sail types", level=2)
    document.add_paragraph("Most were sloops.")
    document.save(str(path))
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def reason_of(path: Path | str, **kwargs: int) -> str:
    with pytest.raises(UnreadableDocument) as info:
        read(path, **kwargs)
    assert info.value.path == str(path)
    return info.value.reason


def assert_invariants(doc: Document) -> None:
    assert doc.text.strip()
    assert "\r" not in doc.text
    for heading in doc.headings:
        assert heading.text
        # a heading starts where its line's markup does ("## Setup"), so sections and chunks
        # that begin with the heading's line belong to it
        line = doc.text[heading.start :].split("\n", 1)[0]
        assert line.lstrip("#").strip().startswith(heading.text)
    previous_end = 0
    for number, page in enumerate(doc.pages, start=1):
        assert page.number == number
        assert previous_end <= page.start <= page.end <= len(doc.text)
        previous_end = page.end
    if doc.pages:  # the spans cover the whole text, apart from the blank lines between pages
        spans = [doc.text[p.start : p.end] for p in doc.pages]
        assert "\n\n".join(span for span in spans if span) == doc.text


# --- good files --------------------------------------------------------------------------------


def test_txt_keeps_text_and_takes_title_from_first_line(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "notes.TXT", b"\r\n  Shopping list \r\neggs\rmilk\n")
    doc = read(str(path))
    assert doc == Document(
        path=str(path), text="\n  Shopping list \neggs\nmilk\n", title="Shopping list", kind="txt"
    )


def test_txt_title_falls_back_to_stem_when_first_line_is_long(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "essay.txt", ("word " * 30).encode() + b"\nmore")
    assert read(path).title == "essay"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_txt_encodings(tmp_path: Path, encoding: str) -> None:
    text = "Café crème\nnaïve — ok ✓\n"
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no BOM; add it
        data = "\ufeff".encode(encoding) + data
    doc = read(write_bytes(tmp_path / "enc.txt", data))
    assert doc.text == text
    assert doc.title == "Café crème"


def test_markdown_headings_skip_code_and_keep_text(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "notes.md", MARKDOWN.encode())
    doc = read(path)
    assert doc.kind == "md"
    assert doc.text == MARKDOWN
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Field notes"),
        (2, "Setup"),
        (2, "Results"),
        (3, "Deep dive"),
    ]
    assert doc.headings[0] == Heading(start=0, level=1, text="Field notes")
    assert doc.headings[1].start == MARKDOWN.index("## Setup")
    assert doc.headings[2].start == MARKDOWN.index("Results\n---")
    assert doc.title == "Field notes"
    assert_invariants(doc)


def test_markdown_front_matter_title_and_setext(tmp_path: Path) -> None:
    text = '---\ntitle: "Tide tables"\ntags: [sea]\n---\nHigh water\n==========\n\nbody\n'
    doc = read(write_bytes(tmp_path / "tides.markdown", text.encode()))
    assert doc.text == text
    assert doc.title == "Tide tables"
    assert doc.headings == (Heading(start=text.index("High"), level=1, text="High water"),)


def test_markdown_title_falls_back_to_stem(tmp_path: Path) -> None:
    doc = read(write_bytes(tmp_path / "scratch.md", b"## Only a level two\n\ntext\n"))
    assert doc.title == "scratch"


def test_html_drops_boilerplate_and_lays_out_text(tmp_path: Path) -> None:
    doc = read(write_bytes(tmp_path / "tides.html", HTML.encode()))
    for word in BOILERPLATE_WORDS:
        assert word not in doc.text, word
    assert doc.kind == "html"
    assert doc.title == "Tidal energy"
    assert doc.text.startswith("How tides turn turbines\n\nTides rise and fall twice a day,")
    assert "driven by the Moon.\n\nBarrages\n\nA barrage holds water\nbehind a dam." in doc.text
    assert "- La Rance\n- Sihwa Lake" in doc.text
    assert "  x = 1\n    y = 2" in doc.text  # whitespace inside <pre> is kept
    assert "Site | MW\nSihwa | 254" in doc.text
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "How tides turn turbines"),
        (2, "Barrages"),
    ]
    assert_invariants(doc)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<body>intro<div>x</div>tail</body>", "intro\nx\ntail"),
        ("<div><p>a</p>b<p>c</p></div>", "a\n\nb\n\nc"),
        ("<ul><li>a</li></ul>after the list", "- a\n\nafter the list"),
        ("<ol><li>Boil</li><li>Pour</li></ol>", "1. Boil\n2. Pour"),
        ("<ol><li>Boil</li><li><p>Pour</p></li></ol>", "1. Boil\n\n2. Pour"),
        ("<ol start='3'><li>x<ul><li>y</li></ul></li><li>z</li></ol>", "3. x\n\n- y\n\n4. z"),
        ("<ol><li></li><li>only</li></ol><li>loose</li>", "2. only\n\nloose"),
        ("<div><div><div>deep</div></div>up</div>", "deep\nup"),
        ("<p>Hello<b>world</b> <i>it</i>s</p>", "Helloworld its"),
        ("<pre>  a\n<b>b</b><br>  c</pre>after", "  a\nb\n  c\n\nafter"),
        ("<p>one<br><br>two</p>", "one\ntwo"),
    ],
)
def test_html_block_layout(tmp_path: Path, html: str, text: str) -> None:
    assert read(write_bytes(tmp_path / "layout.html", html.encode())).text == text


def test_html_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    with_h1 = read(write_bytes(tmp_path / "a.htm", b"<body><h1>Kelp</h1><p>grows</p></body>"))
    assert with_h1.title == "Kelp"
    bare = read(write_bytes(tmp_path / "b.html", b"<p>just text</p>"))
    assert (bare.title, bare.text) == ("b", "just text")


def test_html_honours_declared_charset(tmp_path: Path) -> None:
    html = '<meta charset="windows-1252"><p>Crème brûlée</p>'.encode("cp1252")
    assert read(write_bytes(tmp_path / "old.html", html)).text == "Crème brûlée"


def test_html_reads_a_large_page_quickly(tmp_path: Path) -> None:
    import time

    words = " ".join(["tidal", "power", "uses", "the", "rise", "and", "fall", "of", "seas"] * 8)
    block = (
        f"<div class='post'><h2>Part</h2><p>{words} <a href='#'>more</a> <em>note</em></p>"
        "<ul><li>one item</li><li>another item</li></ul></div>"
    )
    nav = "<nav>" + "<a href='/x'>menu entry</a>" * 300 + "</nav>"
    page = f"<html><body>{nav}<main>{block * 2_500}</main></body></html>"
    path = write_bytes(tmp_path / "big.html", page.encode())
    assert path.stat().st_size > 1_000_000
    started = time.perf_counter()
    doc = read(path)
    assert time.perf_counter() - started < 1.0  # typically about 0.1 s
    assert len(doc.headings) == 2_500
    assert "menu entry" not in doc.text


def test_pdf_pages_and_metadata_title(tmp_path: Path) -> None:
    doc = read(write_pdf(tmp_path / "animals.pdf", PDF_PAGES, title="Animal facts"))
    assert doc.kind == "pdf"
    assert doc.title == "Animal facts"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    for page, expected in zip(doc.pages, PDF_PAGES, strict=True):
        assert doc.text[page.start : page.end] == expected
    assert doc.text == "\n\n".join(PDF_PAGES)
    assert_invariants(doc)


def test_pdf_is_closed_after_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[pypdfium2.PdfDocument] = []
    original = pypdfium2.PdfDocument.close

    def close(self: pypdfium2.PdfDocument, *args: object, **kwargs: object) -> object:
        closed.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pypdfium2.PdfDocument, "close", close)
    read(write_pdf(tmp_path / "a.pdf", PDF_PAGES))
    assert len(closed) == 1


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    doc = read(write_pdf(tmp_path / "untitled.pdf", PDF_PAGES))
    assert doc.title == "Aardvarks dig burrows at night."


def test_pdf_blank_page_gets_an_empty_span(tmp_path: Path) -> None:
    doc = read(write_pdf(tmp_path / "gap.pdf", ("first", "", "third")))
    assert [(p.number, doc.text[p.start : p.end]) for p in doc.pages] == [
        (1, "first"),
        (2, ""),
        (3, "third"),
    ]
    assert doc.text == "first\n\nthird"


def test_docx_paragraphs_headings_and_table(tmp_path: Path) -> None:
    doc = read(write_docx(tmp_path / "survey.docx"))
    assert doc.kind == "docx"
    assert doc.text == (
        "Harbour Survey\n\nMethods\n\nWe counted boats at dawn.\n\n"
        "Boat | Count\nKetch | 7\n\nSail types\n\nMost were sloops."
    )
    assert [(h.level, h.text) for h in doc.headings] == [
        (1, "Harbour Survey"),
        (1, "Methods"),
        (2, "Sail types"),
    ]
    assert doc.title == "Harbour Survey"
    assert_invariants(doc)


def test_docx_title_prefers_core_properties(tmp_path: Path) -> None:
    doc = read(write_docx(tmp_path / "survey.docx", core_title="Survey 2024"))
    assert doc.title == "Survey 2024"


FIXTURES: dict[str, Callable[[Path], Path]] = {
    "txt": lambda d: write_bytes(d / "a.txt", b"Title\n\nbody text\n"),
    "md": lambda d: write_bytes(d / "a.md", MARKDOWN.encode()),
    "html": lambda d: write_bytes(d / "a.html", HTML.encode()),
    "pdf": lambda d: write_pdf(d / "a.pdf", PDF_PAGES, title="T"),
    "docx": lambda d: write_docx(d / "a.docx"),
}


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_invariants_hold_for_every_format(tmp_path: Path, kind: str) -> None:
    path = FIXTURES[kind](tmp_path)
    doc = read(path)
    assert (doc.kind, doc.path) == (kind, str(path))
    assert doc.title
    assert_invariants(doc)


SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "docs"


@pytest.mark.parametrize("path", sorted(SAMPLES.iterdir()), ids=lambda p: p.name)
def test_shipped_samples_read_cleanly(path: Path) -> None:
    doc = read(path)
    assert_invariants(doc)
    assert 200 <= len(doc.text.split()) <= 800
    assert doc.title != path.stem  # every sample has a real title
    assert "Privacy policy" not in doc.text  # the HTML sample's footer
    if doc.kind == "pdf":
        assert len(doc.pages) >= 2


def test_samples_cover_every_format() -> None:
    kinds = {read(path).kind for path in SAMPLES.iterdir()}
    assert kinds == {"txt", "md", "html", "pdf", "docx"}


# --- bad files ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert reason_of(tmp_path / "nope.txt") == "no such file"


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    assert reason_of(tmp_path / "folder.md") == "is a directory, not a file"


def test_permission_denied(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "locked.txt", b"secret")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root (or similar): chmod 000 does not stop reads here")
        assert "permission denied" in reason_of(path)
    finally:
        path.chmod(0o644)


def test_permission_denied_when_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs everywhere, even as root: the open itself is made to fail.
    path = write_bytes(tmp_path / "locked.md", b"# secret")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    assert reason_of(path) == "permission denied; check the file's permissions"


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.pdf", "empty.docx", "e.html"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    assert reason_of(write_bytes(tmp_path / name, b"")) == "empty: no text"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("blank.txt", b" \n\t\r\n "),
        ("blank.md", "\ufeff  \n".encode()),
        ("chrome.html", b"<nav>menu</nav><script>x()</script><p>  </p>"),
    ],
)
def test_whitespace_only_file(tmp_path: Path, name: str, data: bytes) -> None:
    assert reason_of(write_bytes(tmp_path / name, data)) == "empty: no text"


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as fh:
        fh.truncate(52_400_000)  # sparse: costs no disk, and it is never read
    assert reason_of(path) == "52.4 MB, over the 20.0 MB limit (raise ingest max_file_mb)"
    small = write_bytes(tmp_path / "small.txt", b"x" * 11)
    assert reason_of(small, max_bytes=10).startswith("0.0 MB, over the 0.0 MB limit")


@pytest.mark.parametrize("name", ["image.txt", "image.md"])
def test_binary_content_in_a_text_file(tmp_path: Path, name: str) -> None:
    path = write_bytes(tmp_path / name, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert reason_of(path) == "looks like a binary file, not text"


def test_undecodable_bytes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "latin.txt", b"na\xefve caf\xe9")
    fix = "; convert it to UTF-8"
    assert reason_of(path) == "not valid UTF-8: invalid byte 0xef at offset 2" + fix
    with_bom = write_bytes(tmp_path / "bom.md", b"\xef\xbb\xbfok \xff")
    assert reason_of(with_bom) == "not valid UTF-8: invalid byte 0xff at offset 6" + fix


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    with pytest.raises(UnreadableDocument) as info:
        read(path)
    assert info.value.reason.startswith("corrupt or not a PDF")
    assert isinstance(info.value.__cause__, pypdfium2.PdfiumError)


def test_password_protected_pdf(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="classified")
    pdf.set_encryption("owner", user_password="user", encryption_method=EncryptionMethod.RC4)
    path = tmp_path / "locked.pdf"
    pdf.output(str(path))
    assert reason_of(path).startswith("password-protected")


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")  # a drawing stands in for a scanned image
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    assert reason_of(path).startswith("no text layer (scanned images?)")


@pytest.mark.parametrize("kind", ["not a zip", "zip without a document"])
def test_corrupt_docx(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "broken.docx"
    if kind == "not a zip":
        path.write_bytes(b"\xd0\xcf\x11\xe0 an old binary .doc, renamed")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hi")
    with pytest.raises(UnreadableDocument) as info:
        read(path)
    assert info.value.reason.startswith("corrupt or not a .docx file")
    assert info.value.__cause__ is not None


def test_unsupported_suffix_names_the_supported_ones(tmp_path: Path) -> None:
    reason = reason_of(write_bytes(tmp_path / "slides.pptx", b"PK"))
    assert reason.startswith("unsupported file type '.pptx'; supported:")
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in reason
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"} == SUPPORTED_SUFFIXES
