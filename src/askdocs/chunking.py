"""Split a document into chunks that fit the embedder, counted in the embedder's own tokens.

Boundaries are chosen in order of preference: paragraphs (blank lines, page breaks), then
sentences, and only inside a sentence longer than `size`, cuts between tokens (at whitespace when
there is any). The tokenizer runs once over the document; its offsets say how many tokens any span
holds. Every chunk is then re-encoded, in one batch, to check that it really fits.

    >>> from askdocs.models import load_tokenizer
    >>> text = "Dr. Lee measured 3.5 mg. It rose. Then the second test ran and failed."
    >>> doc = Document("notes.txt", text, "notes", "txt")
    >>> chunks = split(doc, load_tokenizer(), size=12, overlap=4)
    >>> [c.text for c in chunks]  # the second repeats the last sentence that fits in 4 tokens
    ['Dr. Lee measured 3.5 mg. It rose.', 'It rose. Then the second test ran and failed.']
    >>> [c.n_tokens for c in chunks]
    [12, 11]
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from askdocs.text import first_non_space, rstrip_end, sentence_breaks
from askdocs.types import Chunk, Document, Page

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tokenizers import Tokenizer

# Below this fill a chunk takes the first sentences of a paragraph that does not fit whole,
# rather than closing early and leaving a small chunk (e.g. a lone heading line).
MIN_FILL = 0.5

# Tokenising ~4 KB pieces in one batch uses every core; one 1 MB string runs on one.
_PIECE_CHARS = 4096
# Whitespace the tokenizer's pre-tokenizer splits on, so cutting inside it changes no token.
# (Python's \s also matches \f and \x1c-\x1f, which the BERT normaliser deletes, gluing words.)
_PLAIN_SPACE = re.compile(r"[ \t\n\r]+")
_PARAGRAPH_BREAK = re.compile(r"(?:\n[^\S\n]*+\n|[\f\u2029])\s*+")


def split(doc: Document, tokenizer: Tokenizer, *, size: int, overlap: int) -> list[Chunk]:
    """Chunks of `doc` of at most `size` tokens, each starting with up to `overlap` tokens of
    the previous one.

    Counts are `len(tokenizer.encode(chunk.text, add_special_tokens=False).ids)`: the caller
    subtracts special tokens and any prefix from the model's limit. Paragraphs that fit are kept
    whole; longer ones are split into sentences; a sentence longer than `size` is cut between
    tokens. Raises ValueError for a bad `size`/`overlap`, a tokenizer that truncates or pads, or a
    `size` so small that a single character needs more tokens.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be >= 0 and < size ({size}), got {overlap}")
    if tokenizer.truncation is not None or tokenizer.padding is not None:
        raise ValueError("the tokenizer must not truncate or pad; call no_truncation/no_padding")
    if not doc.text or doc.text.isspace():
        return []
    layout = _Layout.build(doc, tokenizer, size, overlap)
    plans, counts = _verified_plans(layout)
    anchors = _Anchors.of(doc)
    chunks = []
    for n, (plan, count) in enumerate(zip(plans, counts, strict=True)):
        start, end = plan.start, layout.atoms.end[plan.stop - 1]
        page, heading = anchors.page(start), anchors.heading(start)
        chunks.append(Chunk(n, doc.text[start:end], start, end, count, page, heading))
    return chunks


def _paragraph_breaks(text: str, pages: Iterable[Page]) -> list[int]:
    """Offsets where a paragraph starts: after a blank line, a form feed, or at a page start."""
    breaks = [m.end() for m in _PARAGRAPH_BREAK.finditer(text) if m.end() < len(text)]
    for page in pages:
        start = first_non_space(text, page.start)
        if start is not None:
            breaks.append(start)
    return breaks


@dataclass(frozen=True, slots=True)
class _Tokens:
    """The document's tokens as arrays: char offsets, and whether each continues a word."""

    starts: np.ndarray
    ends: np.ndarray
    cont: np.ndarray  # True for a word piece that continues the previous token's word

    @classmethod
    def of(cls, text: str, tokenizer: Tokenizer) -> _Tokens:
        cuts = _piece_cuts(text)
        pieces = [text[a:b] for a, b in itertools.pairwise(cuts)]
        encodings = tokenizer.encode_batch(pieces, add_special_tokens=False)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        n = int(lengths.sum())
        flat = itertools.chain.from_iterable(
            itertools.chain.from_iterable(e.offsets for e in encodings)
        )
        offsets = np.fromiter(flat, dtype=np.int64, count=2 * n).reshape(n, 2)
        offsets += np.repeat(np.array(cuts[:-1], dtype=np.int64), lengths)[:, None]
        words = itertools.chain.from_iterable(e.word_ids for e in encodings)
        word_ids = np.fromiter((-1 if w is None else w for w in words), dtype=np.int64, count=n)
        cont = np.zeros(n, dtype=bool)
        cont[1:] = (word_ids[1:] == word_ids[:-1]) & (word_ids[1:] >= 0)
        cont[np.cumsum(lengths)[:-1][lengths[1:] > 0]] = False  # word ids restart in each piece
        return cls(offsets[:, 0].copy(), offsets[:, 1].copy(), cont)

    def safe(self, positions: np.ndarray) -> np.ndarray:
        """Whether cutting the text at each offset leaves every token whole and keeps the count
        of a span equal to the number of tokens starting in it."""
        k = np.searchsorted(self.starts, positions)
        n = len(self.starts)
        if n == 0:
            return np.ones(len(positions), dtype=bool)
        straddled = (k > 0) & (self.ends[np.maximum(k - 1, 0)] > positions)
        mid_word = (k < n) & self.cont[np.minimum(k, n - 1)]
        return ~(straddled | mid_word)

    def cut_ranks(self, lo: int, hi: int, newlines: np.ndarray) -> np.ndarray:
        """How good a cut before each token in `lo..hi-1` is (`lo >= 1`): 3 after a newline,
        2 after other whitespace, 1 between words, 0 inside a word, -1 inside one character."""
        starts, prev_ends = self.starts[lo:hi], self.ends[lo - 1 : hi - 1]
        whole = ~self.cont[lo:hi] & (starts >= prev_ends)
        gap = whole & (starts > prev_ends)
        newline = gap & (np.searchsorted(newlines, prev_ends) < np.searchsorted(newlines, starts))
        advances = starts > self.starts[lo - 1 : hi - 1]
        return np.select([newline, gap, whole, advances], [3, 2, 1, 0], default=-1)


def _piece_cuts(text: str) -> list[int]:
    """Offsets splitting `text` into pieces of about `_PIECE_CHARS`, each cut before a run of
    plain whitespace, so that tokenising the pieces gives the tokens of the whole."""
    cuts = [0]
    pos = _PIECE_CHARS
    while pos < len(text) and (match := _PLAIN_SPACE.search(text, pos)) is not None:
        cuts.append(match.start())
        pos = match.end() + _PIECE_CHARS
    cuts.append(len(text))
    return cuts


@dataclass(slots=True)
class _Atoms:
    """The smallest units packed into chunks: sentences, or windows of an over-long sentence.
    `ts:te` are the indices of the document tokens each one holds."""

    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    te: list[int] = field(default_factory=list)
    para: list[int] = field(default_factory=list)
    window: list[bool] = field(default_factory=list)
    opens: list[bool] = field(default_factory=list)  # a heading starts in or just before it

    def add(self, span: tuple[int, int, int, int], para: int, window: bool) -> None:
        for column, value in zip((self.start, self.end, self.ts, self.te), span, strict=True):
            column.append(value)
        self.para.append(para)
        self.window.append(window)

    def replace(self, i: int, spans: list[tuple[int, int, int, int]]) -> None:
        """Put `spans`, windows of the same paragraph, in place of atom `i`."""
        para = self.para[i]
        for column, values in zip(
            (self.start, self.end, self.ts, self.te), zip(*spans, strict=True), strict=True
        ):
            column[i : i + 1] = values
        self.para[i : i + 1] = [para] * len(spans)
        self.window[i : i + 1] = [True] * len(spans)
        self.opens[i : i + 1] = [self.opens[i]] + [False] * (len(spans) - 1)

    def mark_sections(self, heading_starts: list[int]) -> None:
        """Flag the atoms where a heading starts (at or after the end of the atom before)."""
        self.opens = [
            bisect.bisect_left(heading_starts, end) > bisect.bisect_left(heading_starts, after)
            for after, end in zip([0, *self.end[:-1]], self.end, strict=True)
        ]


class _Plan(NamedTuple):
    """A chunk before verification: text from char `start` (token `tok`) to the end of atom
    `stop - 1`; atoms `first..stop-1` are new, anything before `first` repeats the last chunk."""

    start: int
    tok: int
    first: int
    stop: int


@dataclass(slots=True)
class _Layout:
    """Everything packing needs to know about one document, plus what verification learnt."""

    text: str
    tokenizer: Tokenizer
    size: int
    overlap: int
    tokens: _Tokens
    newlines: np.ndarray
    atoms: _Atoms
    para_te: list[int]  # token index where each paragraph ends
    caps: dict[int, int] = field(default_factory=dict)  # first atom -> at most this many atoms
    bare: set[int] = field(default_factory=set)  # first atoms whose chunk takes no context

    @classmethod
    def build(cls, doc: Document, tokenizer: Tokenizer, size: int, overlap: int) -> _Layout:
        tokens = _Tokens.of(doc.text, tokenizer)
        newlines = np.array([m.start() for m in re.finditer("\n", doc.text)], dtype=np.int64)
        layout = cls(doc.text, tokenizer, size, overlap, tokens, newlines, _Atoms(), [])
        layout.add_sentences(doc.pages)
        layout.atoms.mark_sections(sorted(h.start for h in doc.headings))
        return layout

    def count(self, start: int, end: int) -> int:
        return len(self.tokenizer.encode(self.text[start:end], add_special_tokens=False).ids)

    def add_sentences(self, pages: Iterable[Page]) -> None:
        """Fill `atoms` with the document's sentences, windowing those longer than `size`."""
        text, tokens = self.text, self.tokens
        level = dict.fromkeys(sentence_breaks(text), False)
        level.update(dict.fromkeys(_paragraph_breaks(text, pages), True))
        first = first_non_space(text, 0)
        assert first is not None  # split() returns early on blank text
        breaks = np.array(sorted(p for p in level if p > first), dtype=np.int64)
        starts = [first, *breaks[tokens.safe(breaks)].tolist()]
        ends = [
            rstrip_end(text, a, b) for a, b in zip(starts, [*starts[1:], len(text)], strict=True)
        ]
        ts = np.searchsorted(tokens.starts, starts).tolist()
        te = np.searchsorted(tokens.starts, ends).tolist()
        para = -1
        for span in zip(starts, ends, ts, te, strict=True):
            if span[0] == first or level[span[0]]:
                para += 1
                self.para_te.append(span[3])
            self.para_te[para] = span[3]
            if span[3] - span[2] <= self.size:
                self.atoms.add(span, para, window=False)
            else:
                for window in _windows(self, span, verify_all=False):
                    self.atoms.add(window, para, window=True)


def _windows(
    layout: _Layout, span: tuple[int, int, int, int], *, verify_all: bool
) -> list[tuple[int, int, int, int]]:
    """Cut the sentence `span` into balanced windows of at most `size - overlap` tokens, leaving
    room for the context each chunk repeats. E.g. 600 tokens, size 256, overlap 56 -> 200 x 3.

    A cut inside a word can change how the pieces tokenise, so such windows are re-encoded and
    shortened until they fit.
    """
    start, end, ts, te = span
    starts = layout.tokens.starts
    windows: list[tuple[int, int, int, int]] = []
    begin, cur, rank = start, ts, 2
    while True:
        cut, cut_rank = _next_cut(layout, cur, te)
        stop = end if cut == te else rstrip_end(layout.text, begin, int(starts[cut]))
        if verify_all or min(rank, cut_rank) < 1:
            cut, stop = _shrink_to_fit(layout, begin, cur, cut, stop)
        windows.append((begin, stop, cur, cut))
        if cut >= te:
            return windows
        begin, cur, rank = int(starts[cut]), cut, cut_rank


def _next_cut(layout: _Layout, cur: int, te: int) -> tuple[int, int]:
    """Token index ending the window that starts at token `cur` of a sentence ending at `te`,
    and the rank of that cut. Windows leave room for `overlap` unless that forces a cut inside
    a character (several tokens of one character: Hangul syllables)."""
    capacity, remaining = layout.size - layout.overlap, te - cur
    if remaining <= capacity:
        return te, 2
    target = cur + -(-remaining // -(-remaining // capacity))  # ceil(remaining / windows)
    found = _best_cut(layout, cur, cur + capacity, target)
    if found is None and remaining <= layout.size:
        return te, 2
    if found is None:
        found = _best_cut(layout, cur, cur + layout.size, target)
    if found is None:
        raise _too_small(layout, cur)
    return found


def _best_cut(layout: _Layout, cur: int, limit: int, target: int) -> tuple[int, int] | None:
    """The token index in `cur+1..limit` to cut before, and its rank (see `_Tokens.cut_ranks`).

    The best rank near `target` wins; failing that the last cut between words; only a word
    longer than the window is cut inside, and never inside a character (then None).
    """
    ranks = layout.tokens.cut_ranks(cur + 1, limit + 1, layout.newlines)
    ks = np.arange(cur + 1, limit + 1)
    band = ks >= cur + max(1, (target - cur) // 2)
    if band.any() and ranks[band].max() >= 1:
        best = ks[band & (ranks == ranks[band].max())]
        k = int(best[np.argmin(np.abs(best - target))])
    elif ranks.max() >= 1:
        k = int(ks[ranks >= 1][-1])
    elif ranks.max() == 0:
        inside = ks[ranks == 0]
        k = int(inside[np.argmin(np.abs(inside - target))])
    else:
        return None
    return k, int(ranks[k - cur - 1])


def _shrink_to_fit(layout: _Layout, begin: int, cur: int, cut: int, stop: int) -> tuple[int, int]:
    """Move `cut` back a token at a time until `text[begin:stop]` really has <= size tokens."""
    starts = layout.tokens.starts
    while layout.count(begin, stop) > layout.size:
        ranks = layout.tokens.cut_ranks(cur + 1, cut, layout.newlines)
        candidates = np.nonzero(ranks >= 0)[0]
        if not candidates.size:
            raise _too_small(layout, cur)
        cut = cur + 1 + int(candidates[-1])
        stop = rstrip_end(layout.text, begin, int(starts[cut]))
    return cut, stop


def _too_small(layout: _Layout, tok: int) -> ValueError:
    at = int(layout.tokens.starts[tok])
    return ValueError(
        f"size={layout.size} is too small: the text at offset {at} "
        f"({layout.text[at : at + 10]!r}) cannot be cut finely enough; use a larger size"
    )


def _block_tokens(layout: _Layout, i: int) -> int:
    """Tokens the chunk starting with atom `i` must hold: its whole paragraph if `i` starts one
    that fits, else atom `i` alone."""
    a = layout.atoms
    if i == 0 or a.para[i - 1] != a.para[i]:
        whole = layout.para_te[a.para[i]] - a.ts[i]
        if whole <= layout.size:
            return whole
    return a.te[i] - a.ts[i]


def _context(layout: _Layout, prev: _Plan | None, i: int) -> tuple[int, int]:
    """Char and token where the chunk whose new text starts at atom `i` begins: the last whole
    sentences of `prev` within `overlap` tokens (the last tokens, after a window); else atom `i`.
    Context gives way to keeping the next paragraph whole."""
    a, tokens = layout.atoms, layout.tokens
    own = (a.start[i], a.ts[i])
    budget = min(layout.overlap, layout.size - _block_tokens(layout, i))
    if prev is None or i in layout.bare or budget <= 0 or a.opens[i]:
        return own  # nothing to repeat, or no room, or a new section needs no context
    lo = a.ts[i] - budget
    if a.window[i - 1]:
        t0 = max(lo, prev.tok + 1)
        if t0 >= a.ts[i]:
            return own
        ranks = tokens.cut_ranks(t0, a.ts[i], layout.newlines)
        ok = np.nonzero(ranks >= (2 if ranks.max() >= 2 else 1))[0]  # after a space if possible
        return own if not ok.size else (int(tokens.starts[t0 + ok[0]]), t0 + int(ok[0]))
    k = max(bisect.bisect_right(a.start, prev.start, 0, i), bisect.bisect_left(a.ts, lo, 0, i))
    return own if k >= i else (a.start[k], a.ts[k])


def _fill(layout: _Layout, tok: int, i: int) -> int:
    """End (exclusive) of the atoms, from `i`, that fit in a chunk starting at token `tok`.

    A paragraph that would fit in a chunk of its own goes to the next chunk whole, unless this
    one is still under `MIN_FILL`; then it gives its first sentences to fill this one. A chunk
    that ends early does not end with a heading: the heading goes with what follows it, unless
    that would leave a lone heading (a run of headings is packed like text, not one per chunk).
    """
    a, size = layout.atoms, layout.size
    stop = layout.caps.get(i, len(a.start))
    j = i + 1
    while j < stop and a.te[j] - tok <= size:
        para = a.para[j]
        if para != a.para[j - 1]:
            para_te = layout.para_te[para]
            if (
                para_te - tok > size
                and para_te - a.ts[j] <= size
                and a.te[j - 1] - tok >= MIN_FILL * size
            ):
                break
        j += 1
    end = j
    while len(a.start) > j > i + 1 and a.opens[j - 1]:
        j -= 1
    return end if j == i + 1 and a.opens[i] else j


def _pack(layout: _Layout, prev: _Plan | None, i: int) -> list[_Plan]:
    """Greedily pack atoms `i..` into chunks, `prev` being the chunk just before."""
    plans: list[_Plan] = []
    while i < len(layout.atoms.start):
        start, tok = _context(layout, prev, i)
        prev = _Plan(start, tok, i, _fill(layout, tok, i))
        plans.append(prev)
        i = prev.stop
    return plans


def _rebalance_tail(layout: _Layout, plans: list[_Plan]) -> None:
    """Move atoms from the second-to-last chunk into a small last chunk to even out the two."""
    a, size = layout.atoms, layout.size
    if len(plans) < 2:
        return
    head, tail = plans[-2], plans[-1]
    n = len(a.start)
    if a.te[n - 1] - a.ts[tail.first] >= MIN_FILL * size:
        return
    best = (max(a.te[head.stop - 1] - head.tok, a.te[n - 1] - tail.tok), head, tail)
    for k in range(tail.first - 1, head.first, -1):
        if layout.caps.get(k, n) < n:
            break
        if _splits_whole_paragraph(a, head, k):
            continue
        shorter = head._replace(stop=k)
        start, tok = _context(layout, shorter, k)
        if a.te[n - 1] - tok > size:
            break
        worst = max(a.te[k - 1] - head.tok, a.te[n - 1] - tok)
        if worst < best[0]:
            best = (worst, shorter, _Plan(start, tok, k, n))
    plans[-2:] = best[1:]


def _splits_whole_paragraph(a: _Atoms, head: _Plan, k: int) -> bool:
    """Whether ending `head` before atom `k` would split a paragraph it now holds whole."""
    para = a.para[k]
    if a.para[k - 1] != para:
        return False
    first, stop = bisect.bisect_left(a.para, para), bisect.bisect_right(a.para, para)
    return head.first <= first and stop <= head.stop


def _verified_plans(layout: _Layout) -> tuple[list[_Plan], list[int]]:
    """Pack, then re-encode every chunk in one batch; a chunk over `size` (possible only where a
    cut falls inside a word) loses its last atom, or else its context, and packing resumes there.
    Returns the plans and their exact token counts."""
    plans = _pack(layout, None, 0)
    _rebalance_tail(layout, plans)
    counts: list[int] = []
    while True:
        texts = [layout.text[p.start : layout.atoms.end[p.stop - 1]] for p in plans[len(counts) :]]
        encodings = layout.tokenizer.encode_batch(texts, add_special_tokens=False)
        counts.extend(len(e.ids) for e in encodings)
        bad = next((n for n, count in enumerate(counts) if count > layout.size), None)
        if bad is None:
            return plans, counts
        _tighten(layout, plans[bad])
        plans[bad:] = _pack(layout, plans[bad - 1] if bad else None, plans[bad].first)
        _rebalance_tail(layout, plans)
        del counts[min(bad, max(len(plans) - 2, 0)) :]


def _tighten(layout: _Layout, plan: _Plan) -> None:
    """Record a constraint that makes the over-long chunk `plan` shorter when packed again."""
    a, i = layout.atoms, plan.first
    if plan.stop - i > 1:
        layout.caps[i] = plan.stop - 1
    elif plan.start != a.start[i]:
        layout.bare.add(i)
    else:  # one atom whose ends tokenise unlike in the whole document: cut it, verifying
        span = (a.start[i], a.end[i], a.ts[i], a.te[i])
        a.replace(i, _windows(layout, span, verify_all=True))
        layout.caps = {k: v for k, v in layout.caps.items() if k < i}
        layout.bare = {k for k in layout.bare if k < i}


class _Anchors(NamedTuple):
    """Page and heading records sorted by offset, to look up what holds a chunk's start."""

    page_starts: list[int]
    page_numbers: list[int]
    heading_starts: list[int]
    heading_texts: list[str]

    @classmethod
    def of(cls, doc: Document) -> _Anchors:
        pages = sorted(doc.pages, key=lambda page: page.start)
        headings = sorted(doc.headings, key=lambda heading: heading.start)
        return cls(
            [page.start for page in pages],
            [page.number for page in pages],
            [heading.start for heading in headings],
            [heading.text for heading in headings],
        )

    def page(self, pos: int) -> int | None:
        """The page holding `pos`; between pages the one before; before every page the first."""
        if not self.page_starts:
            return None
        return self.page_numbers[max(bisect.bisect_right(self.page_starts, pos) - 1, 0)]

    def heading(self, pos: int) -> str | None:
        """The last heading starting at or before `pos`."""
        k = bisect.bisect_right(self.heading_starts, pos) - 1
        return self.heading_texts[k] if k >= 0 else None
