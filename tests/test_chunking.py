"""Chunking with the embedder's real tokenizer: invariants on varied and generated text, then
the behaviours one by one (paragraphs, sentences, windows, overlap, pages and headings)."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askdocs.chunking import MIN_FILL, split
from askdocs.models import load_tokenizer
from askdocs.text import sentence_spans
from askdocs.types import Chunk, Document, Heading, Page


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


def count(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def doc_of(text: str, pages: tuple[Page, ...] = (), headings: tuple[Heading, ...] = ()) -> Document:
    return Document("doc.txt", text, "doc", "txt", pages, headings)


def check(doc: Document, chunks: list[Chunk], tokenizer, *, size: int, overlap: int) -> None:
    """Every property `split` promises, checked against the real tokenizer."""
    check_spans(doc, chunks)
    encodings = tokenizer.encode_batch([c.text for c in chunks], add_special_tokens=False)
    assert [c.n_tokens for c in chunks] == [len(e.ids) for e in encodings]
    assert all(c.n_tokens <= size for c in chunks)
    repeats = [doc.text[after.start : before.end] for before, after in itertools.pairwise(chunks)]
    if overlap == 0:
        assert not any(repeats)
    for before, after, repeated in zip(chunks, chunks[1:], repeats, strict=False):
        assert before.text.endswith(repeated) and after.text.startswith(repeated)
    repeated_lengths = tokenizer.encode_batch(repeats, add_special_tokens=False)
    assert all(len(e.ids) <= overlap for e in repeated_lengths)


def check_spans(doc: Document, chunks: list[Chunk]) -> None:
    """Chunks are stripped slices of the text, in order, and miss nothing but whitespace."""
    text = doc.text
    for n, chunk in enumerate(chunks):
        assert chunk.ord == n
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text and chunk.text == chunk.text.strip()
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start and before.end < after.end
    bounds = [0, *(x for c in chunks for x in (c.start, c.end)), len(text)]
    for gap_start, gap_end in zip(bounds[::2], bounds[1::2], strict=True):
        assert not text[gap_start:gap_end].strip()


# -- varied documents ------------------------------------------------------------------------

PROSE = (
    "Dr. Smith measured 3.5 mg of it, e.g. in Fig. 2 and Table 1. The results held.\n\n"
    "A second paragraph follows! Does it end? It does... Mostly.\n\n\n\n"
    "# A heading\n\n- a list item\n- another item\n1. numbered\n\n"
    + " ".join(f"word{i} and more words" for i in range(120))
    + ".\n\n"
)
VARIED = {
    "prose": PROSE * 3,
    "one long sentence": " ".join(f"token{i % 13}" for i in range(2000)),
    "no spaces": "abcdefghij" * 9 + "-" + "klmnopqrst" * 9 + "," + "xyz" * 300,
    "long words": " ".join(["pneumonoultramicroscopicsilicovolcanoconiosis" * 2] * 20),
    "cjk": "中文句子。下一句\uff01第三句\uff1f" * 80,
    "hangul": "한국어 문장입니다. " * 120,
    "blank lines": "\n\n\n".join(["x."] * 50) + "\n" * 40,
    "control characters": "abc\fdef\x00ghi\x1cjkl e\u0301te \u200bzero width. " * 60,
    "emoji and accents": "Café déjà vu 🙂🙃 naïve façade — “quoted”. " * 60,
    "single character": "x",
}


@pytest.mark.parametrize("name", VARIED)
@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (16, 5), (64, 16), (256, 32)])
def test_invariants_on_varied_documents(tokenizer, name: str, size: int, overlap: int) -> None:
    doc = doc_of(VARIED[name])
    chunks = split(doc, tokenizer, size=size, overlap=overlap)
    assert chunks
    check(doc, chunks, tokenizer, size=size, overlap=overlap)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t \n"])
def test_blank_documents_have_no_chunks(tokenizer, text: str) -> None:
    assert split(doc_of(text), tokenizer, size=32, overlap=8) == []


PIECES = st.one_of(
    st.text(min_size=1, max_size=12),
    st.text(st.characters(max_codepoint=0x7F), min_size=1, max_size=40),
    st.sampled_from(
        [" ", "\n", "\n\n", "\n \n\n", "\t", "\f", ". ", "? ", "! ", "。", "e.g. ", "Dr. ", "3.5"]
    ),
    st.sampled_from(["the", "cat", "sat", "unbelievably", "한국어", "中文", "é", "🙂", "x" * 150]),
)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    """Generated text, with pages tiling it and headings anywhere (even inside words)."""
    text = "".join(draw(st.lists(PIECES, max_size=60))) * draw(st.integers(1, 4))
    offsets = st.lists(st.integers(0, max(len(text) - 1, 0)), max_size=4, unique=True)
    bounds = [0, *sorted(x for x in draw(offsets) if x > 0), len(text)]
    pages = tuple(Page(n, a, b) for n, (a, b) in enumerate(itertools.pairwise(bounds), start=1))
    headings = tuple(Heading(x, 1, f"h{x}") for x in sorted(draw(offsets)))
    return doc_of(text, pages if draw(st.booleans()) else (), headings)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), size=st.integers(8, 40), data=st.data())
def test_invariants_on_generated_text(tokenizer, doc: Document, size: int, data) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split(doc, tokenizer, size=size, overlap=overlap)
    check(doc, chunks, tokenizer, size=size, overlap=overlap)
    for chunk in chunks:
        pages = [p.number for p in doc.pages if p.start <= chunk.start < p.end]
        assert chunk.page == (pages[0] if pages else None)
        headings = [h.text for h in doc.headings if h.start <= chunk.start]
        assert chunk.heading == (headings[-1] if headings else None)


def test_a_megabyte_document(tokenizer) -> None:
    rng = random.Random(7)
    vocab = ["the", "measurement", "of", "protein", "results", "analysis", "e.g.", "Dr.", "cell"]
    sentences = (" ".join(rng.choices(vocab, k=rng.randint(3, 40))) + "." for _ in range(60_000))
    parts, length = [], 0
    while length < 1_000_000:
        parts.append(" ".join(next(sentences) for _ in range(rng.randint(1, 12))))
        length += len(parts[-1]) + 2
    doc = doc_of("\n\n".join(parts))
    chunks = split(doc, tokenizer, size=200, overlap=32)
    check_spans(doc, chunks)  # token counts are checked on the smaller documents
    assert all(c.n_tokens <= 200 for c in chunks)


# -- sentences --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentences",
    [
        ["Dr. Smith arrived.", "He sat down."],
        ["See Fig. 2 for details.", "It is clear."],
        ["It rose from 3.5 to 4.25 percent.", "Then fell."],
        ["J. R. R. Tolkien wrote it.", "It sold."],
        ["Fruit, e.g. apples, i.e. red ones.", "Good."],
        ["Born in the U.S. in 1990.", "Moved."],
        ["See No. 5 and p. 12 now.", "No.", "It was not."],
        ["It was late...", "Everyone left!", "Why?", "Nobody knew."],
        ['She said "Stop."', "Then she left."],
        ["Why? because.", "Fine."],
        ["Meet at 5 p.m. tomorrow, Mr. Lee.", "Bye."],
        ["No terminator at all"],
    ],
)
def test_sentence_spans(sentences: list[str]) -> None:
    text = " ".join(sentences)
    assert [text[a:b] for a, b in sentence_spans(text)] == sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中文。下一句\uff01第三\uff1f", ["中文。", "下一句\uff01", "第三\uff1f"]),
        ("1. Introduction\n2. Methods", ["1. Introduction", "2. Methods"]),
        ("Intro:\n- one\n- two", ["Intro:", "- one", "- two"]),
        ("  Stripped.  \n", ["Stripped."]),
        (" \n ", []),
    ],
)
def test_sentence_spans_without_spaces_or_at_line_starts(text: str, expected: list[str]) -> None:
    assert [text[a:b] for a, b in sentence_spans(text)] == expected


# -- packing ----------------------------------------------------------------------------------


def sentence(tokenizer, n_tokens: int, i: int) -> str:
    """A sentence of exactly `n_tokens` tokens, different for each `i`."""
    words = " ".join(["alpha", "beta", "gamma", "delta"][(i + k) % 4] for k in range(n_tokens - 2))
    text = f"Item{i} {words}."
    assert count(tokenizer, text) == n_tokens + 1  # "item", "##N" (one token for i < 10)
    return text


def test_paragraphs_that_fit_are_kept_whole(tokenizer) -> None:
    paragraphs = [" ".join(sentence(tokenizer, 10, i + k) for k in range(4)) for i in range(6)]
    doc = doc_of("\n\n".join(paragraphs))  # each paragraph ~44 tokens, two do not fit in 64
    chunks = split(doc, tokenizer, size=64, overlap=0)
    assert [c.text for c in chunks] == paragraphs


def test_small_paragraphs_are_packed_together(tokenizer) -> None:
    paragraphs = [sentence(tokenizer, 9, i) for i in range(9)]
    doc = doc_of("\n\n".join(paragraphs))
    chunks = split(doc, tokenizer, size=32, overlap=0)
    assert ["\n\n".join(paragraphs[k : k + 3]) for k in (0, 3, 6)] == [c.text for c in chunks]


def test_a_long_paragraph_is_split_at_sentences(tokenizer) -> None:
    sentences = [sentence(tokenizer, 10, i) for i in range(9)]
    doc = doc_of(" ".join(sentences))
    chunks = split(doc, tokenizer, size=40, overlap=0)
    check(doc, chunks, tokenizer, size=40, overlap=0)
    starts = {doc.text.index(s) for s in sentences}
    assert len(chunks) > 1 and all(c.start in starts for c in chunks)


def test_a_short_chunk_takes_sentences_from_the_next_paragraph(tokenizer) -> None:
    heading, body = "Results", " ".join(sentence(tokenizer, 10, i) for i in range(5))
    doc = doc_of(f"{heading}\n\n{body}")
    chunks = split(doc, tokenizer, size=40, overlap=0)
    assert chunks[0].text.startswith(f"{heading}\n\nItem0")  # not a lone "Results" chunk


def test_no_tiny_last_chunk(tokenizer) -> None:
    doc = doc_of(" ".join(sentence(tokenizer, 10, i) for i in range(7)))
    chunks = split(doc, tokenizer, size=33, overlap=0)  # greedy packing would leave 11 last
    check(doc, chunks, tokenizer, size=33, overlap=0)
    assert chunks[-1].n_tokens >= MIN_FILL * 33 - 11


def test_a_long_sentence_is_cut_between_words_into_even_windows(tokenizer) -> None:
    doc = doc_of(" ".join(f"word{i % 7}" for i in range(300)) + ".")
    chunks = split(doc, tokenizer, size=64, overlap=0)
    check(doc, chunks, tokenizer, size=64, overlap=0)
    for before, after in itertools.pairwise(chunks):
        assert doc.text[before.end].isspace() and doc.text[after.start - 1].isspace()
    sizes = [c.n_tokens for c in chunks]
    assert max(sizes) - min(sizes) <= 3


def test_a_word_longer_than_size_is_cut_between_word_pieces(tokenizer) -> None:
    word = "pneumonoultramicroscopicsilicovolcanoconiosis"
    doc = doc_of(word)
    chunks = split(doc, tokenizer, size=4, overlap=0)
    assert len(chunks) > 1 and "".join(c.text for c in chunks) == word
    check(doc, chunks, tokenizer, size=4, overlap=0)


def test_a_heading_goes_with_its_section(tokenizer) -> None:
    setup = " ".join(sentence(tokenizer, 10, i) for i in range(3))  # 33 tokens
    usage = " ".join(sentence(tokenizer, 10, i) for i in range(3, 7))  # 44 tokens
    text = f"Setup\n\n{setup}\n\nUsage\n\n{usage}"
    headings = (Heading(0, 2, "Setup"), Heading(text.index("Usage"), 2, "Usage"))
    doc = doc_of(text, headings=headings)
    chunks = split(doc, tokenizer, size=48, overlap=12)
    check(doc, chunks, tokenizer, size=48, overlap=12)
    assert [c.text for c in chunks] == [f"Setup\n\n{setup}", f"Usage\n\n{usage}"]
    assert [c.heading for c in chunks] == ["Setup", "Usage"]


# -- overlap ----------------------------------------------------------------------------------


def test_overlap_repeats_the_last_whole_sentences(tokenizer) -> None:
    sentences = [sentence(tokenizer, 6, i) for i in range(30)]
    doc = doc_of(" ".join(sentences))
    chunks = split(doc, tokenizer, size=40, overlap=15)
    check(doc, chunks, tokenizer, size=40, overlap=15)
    starts = {doc.text.index(s) for s in sentences}
    for before, after in itertools.pairwise(chunks):
        assert after.start in starts
        repeated = doc.text[after.start : before.end]
        assert before.text.endswith(repeated) and after.text.startswith(repeated)
        assert 0 < count(tokenizer, repeated) <= 15  # two 7-token sentences


def test_overlap_inside_a_long_sentence_is_by_tokens(tokenizer) -> None:
    doc = doc_of(" ".join(f"word{i % 7}" for i in range(300)) + ".")
    chunks = split(doc, tokenizer, size=64, overlap=10)
    check(doc, chunks, tokenizer, size=64, overlap=10)
    for before, after in itertools.pairwise(chunks):
        assert 8 <= count(tokenizer, doc.text[after.start : before.end]) <= 10


# -- pages and headings -----------------------------------------------------------------------


def test_pages_and_headings(tokenizer) -> None:
    page_texts = [  # each page holds about 40 tokens: two never share a chunk of 48
        "Intro\n\n" + " ".join(sentence(tokenizer, 10, i) for i in range(4)),
        " ".join(sentence(tokenizer, 10, i) for i in range(4, 8)),
        "Methods\n\n" + " ".join(sentence(tokenizer, 10, i) for i in range(8, 11)),
    ]
    text, pages = "", []
    for number, page_text in enumerate(page_texts, start=1):
        pages.append(Page(number, len(text), len(text) + len(page_text)))
        text += page_text + "\f"
    headings = (Heading(0, 1, "Intro"), Heading(text.index("Methods"), 1, "Methods"))
    doc = Document("doc.pdf", text, "doc", "pdf", tuple(pages), headings)
    chunks = split(doc, tokenizer, size=48, overlap=12)
    check(doc, chunks, tokenizer, size=48, overlap=12)
    for chunk in chunks:
        (page,) = (p.number for p in pages if p.start <= chunk.start < p.end)
        assert chunk.page == page
        assert chunk.heading == ("Methods" if chunk.start >= headings[1].start else "Intro")
    assert {c.page for c in chunks} == {1, 2, 3} and {c.heading for c in chunks} == {
        "Intro",
        "Methods",
    }
    # the page break is a paragraph break: page 2 starts a chunk of its own
    assert pages[1].start in {c.start for c in chunks}


def test_no_pages_no_headings_gives_none(tokenizer) -> None:
    (chunk,) = split(doc_of("Just one sentence."), tokenizer, size=32, overlap=0)
    assert chunk == Chunk(0, "Just one sentence.", 0, 18, 4, None, None)


# -- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-5, 0), (10, -1), (10, 10), (10, 11)])
def test_bad_size_or_overlap(tokenizer, size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match=re.escape("size") if size < 1 else "overlap"):
        split(doc_of("Some text."), tokenizer, size=size, overlap=overlap)


def test_a_truncating_tokenizer_is_refused() -> None:
    truncating = load_tokenizer()
    truncating.enable_truncation(128)
    with pytest.raises(ValueError, match="truncate"):
        split(doc_of("Some text."), truncating, size=32, overlap=0)


def test_a_chunk_starting_at_a_markdown_heading_carries_that_heading(tokenizer, tmp_path) -> None:
    from askdocs.readers import read

    first = " ".join(sentence(tokenizer, 10, i) for i in range(4))
    second = " ".join(sentence(tokenizer, 10, i) for i in range(4, 8))
    path = tmp_path / "notes.md"
    path.write_text(f"# Setup\n\n{first}\n\n## Results\n\n{second}\n", encoding="utf-8")
    doc = read(path)
    chunks = split(doc, tokenizer, size=50, overlap=0)
    at_results = [c for c in chunks if c.text.startswith("## Results")]
    assert at_results and all(c.heading == "Results" for c in at_results)
