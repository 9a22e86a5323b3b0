"""Immutable posting segments behind `askdocs.keyword.KeywordIndex`, and query scoring over them.

A segment is a small inverted index over one batch of documents, held in a few flat numpy arrays
(CSR by term), so a million documents cost a handful of arrays rather than millions of Python
objects. Segments are never edited: a delete only clears a bit in `live`, and merging writes a
new segment without the deleted documents. Segments are merged in size tiers (`merge_plan`), so
adding a small batch never rewrites the whole index.

Queries are scored term-at-a-time with numpy (`evaluate`): exhaustively on small indexes, and
with MaxScore pruning once the query's postings are many, which skips most postings of common
terms yet returns exactly the same hits and scores.

Layout, for documents 7 -> [5, 2, 5] and 3 -> [2] (global term ids):

    ids     [3, 7]        local doc i is chunk ids[i]; ascending so lookups are a searchsorted
    lengths [1, 3]        tokens per document, stop words removed
    terms   [2, 5]        global term ids present, ascending
    indptr  [0, 2, 3]     postings of terms[j] are docs/tfs[indptr[j]:indptr[j + 1]]
    docs    [0, 1, 1]     local doc index of each posting
    tfs     [1, 1, 2]     term frequency of each posting
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MERGE_FACTOR = 4


@dataclass(slots=True, eq=False)
class Segment:
    """One immutable batch of indexed documents plus its tombstones (see the module docstring)."""

    ids: np.ndarray
    lengths: np.ndarray
    live: np.ndarray
    terms: np.ndarray
    indptr: np.ndarray
    docs: np.ndarray
    tfs: np.ndarray
    n_dead: int = 0
    _norms: np.ndarray | None = None
    _norms_key: tuple[float, float, float] | None = None
    _dead_df: np.ndarray | None = None

    @property
    def n_live(self) -> int:
        return len(self.ids) - self.n_dead

    def find_live(self, ids: np.ndarray) -> np.ndarray:
        """Local indices of the live documents among `ids` (sorted, unique int64)."""
        if len(self.ids) == 0 or len(ids) == 0:
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids)
        inside = pos < len(self.ids)
        pos = pos[inside]
        pos = pos[self.ids[pos] == ids[inside]]
        return pos[self.live[pos]]

    def kill(self, local: np.ndarray) -> int:
        """Tombstone live local docs; returns the number of tokens they held."""
        self.live[local] = False
        self.n_dead += len(local)
        self._dead_df = None
        return int(self.lengths[local].sum(dtype=np.int64))

    def norms(self, avgdl: float, k1: float, b: float) -> np.ndarray:
        """Per-document BM25 length norm k1 * (1 - b + b * dl / avgdl), cached per avgdl.

        avgdl moves with every add or delete, so this is recomputed lazily on the first query
        after a change: O(docs) once, instead of per posting on every query.
        """
        key = (avgdl, k1, b)
        if self._norms is None or self._norms_key != key:
            self._norms = (k1 * ((1.0 - b) + b * (self.lengths / avgdl))).astype(np.float32)
            self._norms_key = key
        return self._norms

    def dead_df(self) -> np.ndarray | None:
        """Deleted documents per term (None if none), computed on the first query after a delete.

        One pass over the postings, then reused: deletes stay cheap bit flips, and queries can
        get exact live df without reading the postings of common terms.
        """
        if self.n_dead == 0:
            return None
        if self._dead_df is None:
            dead = np.flatnonzero(~self.live[self.docs])
            term = np.searchsorted(self.indptr, dead, side="right") - 1
            self._dead_df = np.bincount(term, minlength=len(self.terms))
        return self._dead_df

    def nbytes(self) -> int:
        arrays = (self.ids, self.lengths, self.live, self.terms, self.indptr, self.docs, self.tfs)
        return sum(a.nbytes for a in arrays)


def build_segment(ids: np.ndarray, lengths: np.ndarray, tokens: np.ndarray) -> Segment:
    """Index one batch: `tokens` holds every document's term ids back to back, `lengths` how many.

    Example: ids [7, 3], lengths [3, 1], tokens [5, 2, 5, 2] gives the segment drawn in the
    module docstring (documents are stored in id order, so id 3 becomes local doc 0).
    """
    order = np.argsort(ids, kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    doc_of_token = np.repeat(rank, lengths)
    n = max(len(ids), 1)
    keys, tfs = np.unique(tokens.astype(np.int64) * n + doc_of_token, return_counts=True)
    return _assemble(ids[order], lengths[order], [_csr_piece(keys, tfs, n)])


def merge_segments(segments: list[Segment]) -> Segment:
    """One segment with the live documents of `segments`; tombstoned documents are dropped.

    Works through the vocabulary in ranges of about _MERGE_CHUNK postings: sorting all postings
    at once would need ~30 temporary bytes per posting, over 1 GB for a million documents.
    """
    live_ids = [s.ids[s.live] for s in segments]
    ids = np.concatenate(live_ids)
    order = np.argsort(ids, kind="stable")
    new_local = np.empty(len(ids), dtype=np.int64)
    new_local[order] = np.arange(len(ids))
    remaps, start = [], 0
    for seg, seg_ids in zip(segments, live_ids, strict=True):
        remap = np.full(len(seg.ids), -1, dtype=np.int64)
        remap[seg.live] = new_local[start : start + len(seg_ids)]
        remaps.append(remap)
        start += len(seg_ids)
    n = max(len(ids), 1)
    pieces = []
    for low, high in _term_ranges(segments):
        keys, tfs = [], []
        for seg, remap in zip(segments, remaps, strict=True):
            first, last = np.searchsorted(seg.terms, [low, high])
            bounds = seg.indptr[first : last + 1]
            term = np.repeat(seg.terms[first:last].astype(np.int64), np.diff(bounds))
            doc = remap[seg.docs[bounds[0] : bounds[-1]]]
            keep = doc >= 0
            keys.append(term[keep] * n + doc[keep])
            tfs.append(seg.tfs[bounds[0] : bounds[-1]][keep])
        # Each segment's keys are sorted already (remap keeps id order), so a stable sort only
        # merges a few sorted runs: timsort does that in about linear time.
        all_keys = np.concatenate(keys)
        by_key = np.argsort(all_keys, kind="stable")
        pieces.append(_csr_piece(all_keys[by_key], np.concatenate(tfs)[by_key], n))
    lengths = np.concatenate([s.lengths[s.live] for s in segments])
    return _assemble(ids[order], lengths[order], pieces)


_MERGE_CHUNK = 4_000_000  # postings sorted at once while merging


def _term_ranges(segments: list[Segment]) -> list[tuple[int, int]]:
    """Split the term ids of `segments` into [low, high) ranges of about _MERGE_CHUNK postings."""
    terms = np.concatenate([s.terms for s in segments]).astype(np.int64)
    sizes = np.concatenate([np.diff(s.indptr) for s in segments])
    order = np.argsort(terms, kind="stable")
    terms, total = terms[order], np.cumsum(sizes[order])
    cuts = np.searchsorted(
        total, np.arange(_MERGE_CHUNK, total[-1] if len(total) else 0, _MERGE_CHUNK)
    )
    edges = np.unique(np.concatenate(([0], terms[cuts], [terms[-1] + 1 if len(terms) else 0])))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _csr_piece(keys: np.ndarray, tfs: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """(terms, postings per term, docs, tfs) from postings sorted by key = term * n + doc."""
    term, docs = np.divmod(keys, n)
    starts = np.flatnonzero(np.diff(term)) + 1
    heads = np.concatenate(([0], starts)) if len(term) else starts
    counts = np.diff(np.concatenate((heads, [len(term)])))
    return term[heads].astype(np.uint32), counts, docs.astype(np.uint32), tfs


def _assemble(
    ids: np.ndarray, lengths: np.ndarray, pieces: list[tuple[np.ndarray, ...]]
) -> Segment:
    """A segment from its documents and the CSR pieces of consecutive term ranges."""
    if not pieces:  # no document has a term
        pieces = [_csr_piece(np.empty(0, np.int64), np.empty(0, np.uint8), 1)]
    terms, counts, docs, tfs = (np.concatenate([p[i] for p in pieces]) for i in range(4))
    max_tf = int(tfs.max()) if len(tfs) else 1
    return Segment(
        ids=ids.astype(np.int64),
        lengths=lengths.astype(np.uint32),
        live=np.ones(len(ids), dtype=bool),
        terms=terms.astype(np.uint32),
        indptr=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        docs=docs.astype(np.uint32),
        # Most chunks repeat no word 256 times: one byte per tf keeps postings at 5 bytes.
        tfs=tfs.astype(np.min_scalar_type(max_tf)),
    )


def merge_plan(sizes: list[int], factor: int = MERGE_FACTOR) -> list[int] | None:
    """Indices of segments to merge next, or None: `factor` segments of the same size tier.

    Tier = floor(log_factor(size)), so every document is rewritten about log_factor(N) times
    (amortised O(log N) per add) and at most (factor - 1) segments live in each tier.

    >>> merge_plan([1000, 3, 2, 1, 3])
    [1, 2, 3, 4]
    >>> merge_plan([1000, 50, 3]) is None
    True
    """
    tiers: dict[int, list[int]] = {}
    for i, size in enumerate(sizes):
        tier = 0
        while size >= factor:
            size //= factor
            tier += 1
        tiers.setdefault(tier, []).append(i)
    full = [group for _, group in sorted(tiers.items()) if len(group) >= factor]
    return full[0] if full else None


# Queries touching fewer postings than this are scored exhaustively: on small indexes the
# bookkeeping of pruning costs more than it saves.
PRUNE_MIN_POSTINGS = 200_000
_PRUNE_BUDGET = 4  # give up pruning once the essential terms hold 1/4 of the query's postings
_BOUND_SLACK = 1 + 1e-5  # headroom for float32 rounding in the score upper bound


@dataclass(frozen=True, slots=True)
class Query:
    """What scoring needs besides the postings: per-term weights and the collection stats."""

    weights: np.ndarray  # float32 per query term: idf * occurrences in the query
    avgdl: float
    k1: float
    b: float
    k: int
    allowed: np.ndarray | None  # sorted ids the caller permits, or None for all


@dataclass(frozen=True, slots=True)
class Located:
    """Where the postings of a query's terms sit in one segment."""

    seg: Segment
    term: np.ndarray  # indices into the query terms found here, ascending
    start: np.ndarray  # posting range [start, end) of each
    end: np.ndarray
    live_df: np.ndarray  # live documents of each


def locate(seg: Segment, query_terms: np.ndarray) -> Located | None:
    """Find the posting ranges of `query_terms` (global term ids) in `seg`."""
    if len(seg.terms) == 0 or seg.n_live == 0:
        return None
    pos = np.searchsorted(seg.terms, query_terms)
    pos[pos == len(seg.terms)] = 0
    term = np.flatnonzero(seg.terms[pos] == query_terms)
    if len(term) == 0:
        return None
    pos = pos[term]
    start, end = seg.indptr[pos], seg.indptr[pos + 1]
    dead = seg.dead_df()
    live_df = end - start if dead is None else end - start - dead[pos]
    return Located(seg, term, start, end, live_df)


def evaluate(located: list[Located], query: Query) -> tuple[np.ndarray, np.ndarray]:
    """The top-k (ids, float32 scores) over the segments, best first, ties to the smaller id."""
    volume = np.zeros(len(query.weights), dtype=np.int64)
    for loc in located:
        volume[loc.term] += loc.end - loc.start
    if volume.sum() >= PRUNE_MIN_POSTINGS and len(volume) > 1:
        hits = _pruned(located, query, volume)
        if hits is not None:
            return hits
    parts = [_exhaustive(loc, query) for loc in located]
    return top_k(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), query.k
    )


def _exhaustive(loc: Located, query: Query) -> tuple[np.ndarray, np.ndarray]:
    """Score every posting of the query terms in one segment; its top-k."""
    docs, contrib = _contributions(loc, np.arange(len(loc.term)), query)
    # Postings come in query-term order and bincount adds them one by one in float64, so a
    # document's score does not depend on its segment: incremental equals rebuilt, bit for bit.
    scores = np.bincount(docs, weights=contrib, minlength=len(loc.seg.ids))
    local = np.flatnonzero(scores)
    if loc.seg.n_dead:
        local = local[loc.seg.live[local]]
    ids = loc.seg.ids[local]
    scores = scores[local].astype(np.float32)
    if query.allowed is not None:
        keep = member(ids, query.allowed)
        ids, scores = ids[keep], scores[keep]
    return top_k(ids, scores, query.k)


def _contributions(loc: Located, which: np.ndarray, query: Query) -> tuple[np.ndarray, np.ndarray]:
    """Local doc and float32 score contribution of each posting of terms loc.term[which].

    Deleted documents are included: callers drop them after summing, which touches far fewer
    entries than filtering every posting.
    """
    seg = loc.seg
    starts, ends = loc.start[which].tolist(), loc.end[which].tolist()
    docs = np.concatenate([seg.docs[s:e] for s, e in zip(starts, ends, strict=True)])
    tfs = np.concatenate([seg.tfs[s:e] for s, e in zip(starts, ends, strict=True)])
    term = np.repeat(loc.term[which], loc.end[which] - loc.start[which])
    tf = tfs.astype(np.float32)
    norms = seg.norms(query.avgdl, query.k1, query.b)
    return docs, query.weights[term] * (tf / (tf + norms[docs]))


def _pruned(
    located: list[Located], query: Query, volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """MaxScore: the same top-k without reading the postings of the commonest terms, or None.

    A term adds at most its weight to a score (tf / (tf + norm) < 1). Take the rarest terms as
    essential and score their documents on those terms only: the k-th best of these partial
    scores, theta, is a lower bound of the final k-th score. If the weights of the other terms
    sum below theta, a document outside the essential postings cannot make the top-k, nor can
    a candidate whose partial score plus those weights stays below theta; the few remaining
    candidates get their full score. Gives up (None) once the essential terms hold a quarter
    of the postings, where a full scan is cheaper.
    """
    order = np.argsort(volume, kind="stable")
    rest = np.cumsum(query.weights[order][::-1].astype(np.float64))[::-1]
    essential, budget = 0, int(volume.sum()) // _PRUNE_BUDGET
    for i in range(len(order) - 1):
        essential += int(volume[order[i]])
        if essential > budget:
            return None
        is_essential = np.zeros(len(volume), dtype=bool)
        is_essential[order[: i + 1]] = True
        partial = [_partial_scores(loc, is_essential, query) for loc in located]
        scores = np.concatenate([p[1] for p in partial])
        if len(scores) < query.k:
            continue
        theta = np.partition(scores, len(scores) - query.k)[len(scores) - query.k]
        if rest[i + 1] * _BOUND_SLACK >= theta:
            continue
        return _narrow(located, partial, order[i + 1 :], rest[i + 1 :], theta, query)
    return None


def _narrow(
    located: list[Located],
    partial: list[tuple[np.ndarray, np.ndarray]],
    later: np.ndarray,
    rest: np.ndarray,
    theta: float,
    query: Query,
) -> tuple[np.ndarray, np.ndarray]:
    """Add the later terms one by one, dropping candidates that can no longer reach theta.

    rest[s] bounds what terms later[s:] can still add; partial scores only grow, so their k-th
    best keeps raising theta. The survivors are then scored exactly, in canonical term order.
    """
    for step, j in enumerate([*later.tolist(), None]):
        bound = rest[step] if j is not None else 0.0
        partial = [
            (d[(p + bound) * _BOUND_SLACK >= theta], p[(p + bound) * _BOUND_SLACK >= theta])
            for d, p in partial
        ]
        if j is None:
            break
        partial = [
            (d, p + _lookup(loc, d, j, query)) for loc, (d, p) in zip(located, partial, strict=True)
        ]
        scores = np.concatenate([p for _, p in partial])
        if len(scores) >= query.k:
            theta = max(theta, np.partition(scores, len(scores) - query.k)[len(scores) - query.k])
    ids = np.concatenate([loc.seg.ids[d] for loc, (d, _) in zip(located, partial, strict=True)])
    scores = [_score_docs(loc, d, query) for loc, (d, _) in zip(located, partial, strict=True)]
    return top_k(ids, np.concatenate(scores).astype(np.float32), query.k)


def _partial_scores(
    loc: Located, is_essential: np.ndarray, query: Query
) -> tuple[np.ndarray, np.ndarray]:
    """Live, allowed local docs of the essential terms and their score on those terms only."""
    which = np.flatnonzero(is_essential[loc.term])
    if len(which) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    docs, contrib = _contributions(loc, which, query)
    docs, where = np.unique(docs, return_inverse=True)
    partial = np.bincount(where, weights=contrib, minlength=len(docs))
    if loc.seg.n_dead:
        live = loc.seg.live[docs]
        docs, partial = docs[live], partial[live]
    if query.allowed is not None:
        keep = member(loc.seg.ids[docs], query.allowed)
        docs, partial = docs[keep], partial[keep]
    return docs.astype(np.int64), partial


def _score_docs(loc: Located, docs: np.ndarray, query: Query) -> np.ndarray:
    """Full scores of some local documents, by looking them up in each term's postings.

    Adds the same float32 contributions in the same term order as `_exhaustive`, so both
    paths give identical scores.
    """
    total = np.zeros(len(docs))
    for at in range(len(loc.term)):
        total += _lookup_at(loc, docs, at, query)
    return total


def _lookup(loc: Located, docs: np.ndarray, j: int, query: Query) -> np.ndarray:
    """Contribution of query term j to each of `docs` (0 where absent)."""
    at = int(np.searchsorted(loc.term, j))
    if at == len(loc.term) or loc.term[at] != j:
        return np.zeros(len(docs), dtype=np.float32)
    return _lookup_at(loc, docs, at, query)


def _lookup_at(loc: Located, docs: np.ndarray, at: int, query: Query) -> np.ndarray:
    """Contribution of the term loc.term[at] to each of the sorted `docs` (0 where absent)."""
    seg = loc.seg
    start, end = int(loc.start[at]), int(loc.end[at])
    postings = seg.docs[start:end]
    pos = np.minimum(np.searchsorted(postings, docs), len(postings) - 1)
    hit = postings[pos] == docs
    tf = seg.tfs[start + pos[hit]].astype(np.float32)
    norms = seg.norms(query.avgdl, query.k1, query.b)[docs[hit]]
    contrib = np.zeros(len(docs), dtype=np.float32)
    contrib[hit] = query.weights[loc.term[at]] * (tf / (tf + norms))
    return contrib


def member(ids: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Mask of `ids` found in the sorted array `allowed`."""
    if len(allowed) == 0:
        return np.zeros(len(ids), dtype=bool)
    pos = np.minimum(np.searchsorted(allowed, ids), len(allowed) - 1)
    return allowed[pos] == ids


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (id, score) pairs, best first, ties broken by the smaller id.

    >>> top_k(np.array([9, 4, 7]), np.array([1.0, 2.0, 1.0], dtype=np.float32), 2)
    (array([4, 7]), array([2., 1.], dtype=float32))
    """
    if len(scores) > k:
        # Keep everything tied with the k-th score so the id tie-break sees all of them.
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        keep = scores >= kth
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


_ARRAY_FIELDS = ("ids", "lengths", "live", "terms", "indptr", "docs", "tfs")


def segment_arrays(seg: Segment, prefix: str) -> dict[str, np.ndarray]:
    """The arrays to save for `seg`, named "<prefix>.<field>"."""
    return {f"{prefix}.{name}": getattr(seg, name) for name in _ARRAY_FIELDS}


def segment_from_arrays(arrays: dict[str, np.ndarray], prefix: str, n_terms: int) -> Segment:
    """Rebuild a saved segment, checking that its arrays fit together (ValueError if not)."""
    try:
        fields = {name: arrays[f"{prefix}.{name}"] for name in _ARRAY_FIELDS}
    except KeyError as exc:
        raise ValueError(f"segment {prefix} lacks array {exc}") from exc
    seg = Segment(**fields)
    seg.live = seg.live.astype(bool, copy=True)  # loaded arrays are read-only views
    seg.n_dead = int(len(seg.live) - np.count_nonzero(seg.live))
    n, nnz = len(seg.ids), len(seg.docs)
    consistent = (
        len(seg.lengths) == n == len(seg.live)
        and len(seg.indptr) == len(seg.terms) + 1
        and int(seg.indptr[0]) == 0
        and int(seg.indptr[-1]) == nnz == len(seg.tfs)
        and bool(np.all(np.diff(seg.indptr) > 0))
        and (nnz == 0 or int(seg.docs.max()) < n)
        and (len(seg.terms) == 0 or int(seg.terms.max()) < n_terms)
        and bool(np.all(np.diff(seg.ids) > 0))
        and _sorted_within_terms(seg.docs, seg.indptr)
    )
    if not consistent:
        raise ValueError(f"segment {prefix} is inconsistent")
    return seg


def _sorted_within_terms(docs: np.ndarray, indptr: np.ndarray) -> bool:
    """Whether each term's postings list its documents in ascending order (lookups need it)."""
    step = np.diff(docs.astype(np.int64))
    step[indptr[1:-1] - 1] = 1  # a new term may start anywhere
    return bool(np.all(step > 0))
