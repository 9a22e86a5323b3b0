"""The PostgreSQL store's tables, as numbered migrations from an empty schema.

Opening a store runs the migrations past the version it records (`askdocs_meta`), in one
transaction; an askdocs older than a store's version refuses to open it ("upgrade askdocs").
Migration 4 rewrites the postings table: 253 s for a million chunks (44.5 million postings)
on 2 cores shared with an index build.
`{dim}`, `{m}` and `{ef}` are the embedding dimension and pgvector's HNSW parameters.
"""

from __future__ import annotations

from askdocs.text import BM25_B, BM25_K1

SCHEMA_VERSION = 5

# Each entry takes the schema from the version before it to its own number.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE askdocs_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE askdocs_stats (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), chunks BIGINT NOT NULL,
    tokens BIGINT NOT NULL
);
INSERT INTO askdocs_stats VALUES (TRUE, 0, 0);
CREATE TABLE askdocs_contents (
    id BIGSERIAL PRIMARY KEY, hash TEXT NOT NULL, pipeline TEXT NOT NULL,
    kind TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    pages JSONB NOT NULL, headings JSONB NOT NULL, UNIQUE (hash, pipeline)
);
CREATE TABLE askdocs_documents (
    id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE,
    content_id BIGINT NOT NULL REFERENCES askdocs_contents(id),
    size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL,
    added_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX askdocs_documents_content ON askdocs_documents (content_id);
CREATE TABLE askdocs_chunks (
    id BIGSERIAL PRIMARY KEY,
    content_id BIGINT NOT NULL REFERENCES askdocs_contents(id),
    ord INTEGER NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    page INTEGER, heading TEXT, n_tokens INTEGER NOT NULL, text_hash BYTEA NOT NULL,
    embedding vector({dim}) NOT NULL, terms TSVECTOR NOT NULL, n_terms INTEGER NOT NULL
);
CREATE INDEX askdocs_chunks_content ON askdocs_chunks (content_id);
CREATE INDEX askdocs_chunks_text_hash ON askdocs_chunks (text_hash);
CREATE INDEX askdocs_chunks_terms ON askdocs_chunks USING gin (terms);
CREATE INDEX askdocs_chunks_embedding ON askdocs_chunks
    USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef});
CREATE TABLE askdocs_terms (term TEXT PRIMARY KEY, df BIGINT NOT NULL);
""",
    # BM25 over the GIN-matched tsvectors took 0.4-0.5 s a query on SciFact (every candidate's
    # tsvector unnested); a postings table read through its term index takes milliseconds.
    2: """
CREATE TABLE askdocs_postings (
    term TEXT NOT NULL, chunk_id BIGINT NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL
);
INSERT INTO askdocs_postings
    SELECT u.lexeme, ch.id, cardinality(u.positions), ch.n_terms
    FROM askdocs_chunks ch, unnest(ch.terms) u;
CREATE INDEX askdocs_postings_term ON askdocs_postings (term) INCLUDE (chunk_id, tf, dl);
CREATE INDEX askdocs_postings_chunk ON askdocs_postings (chunk_id);
""",
    # Document tags (`store.tags`), kept by the document row: a path whose content changes
    # keeps its row and its tags; a path removed takes them along. Named annotations beside.
    3: """
CREATE TABLE askdocs_tags (
    document_id BIGINT NOT NULL REFERENCES askdocs_documents(id) ON DELETE CASCADE,
    key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (document_id, key)
);
CREATE INDEX askdocs_tags_key_value ON askdocs_tags (key, value) INCLUDE (document_id);
CREATE TABLE askdocs_annotations (name TEXT PRIMARY KEY, value TEXT NOT NULL);
""",
    # Each posting's BM25 impact (`pg_keyword.impact`, at the mean length of its writing), and
    # the term index ordered by it: a query of common terms reads the strongest postings of
    # each instead of all of them. The (chunk, term) index scores the chosen chunks exactly.
    4: f"""
CREATE TABLE askdocs_postings_4 (
    term TEXT NOT NULL, chunk_id BIGINT NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL,
    impact REAL NOT NULL
);
INSERT INTO askdocs_postings_4
    SELECT p.term, p.chunk_id, p.tf, p.dl,
        p.tf / (p.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * p.dl / s.avgdl))
    FROM askdocs_postings p,
        (SELECT GREATEST(tokens, 1)::float8 / GREATEST(chunks, 1) AS avgdl FROM askdocs_stats) s;
DROP TABLE askdocs_postings;
ALTER TABLE askdocs_postings_4 RENAME TO askdocs_postings;
CREATE INDEX askdocs_postings_term ON askdocs_postings (term, impact DESC)
    INCLUDE (chunk_id, tf, dl);
CREATE INDEX askdocs_postings_chunk ON askdocs_postings (chunk_id, term) INCLUDE (tf, dl);
ANALYZE askdocs_postings;
""",
    # A filter's chunk ids read from the content index alone, not from the chunk rows, which
    # are wide (text and vector): 100,000 of them took seconds to visit at 1M chunks.
    5: """
DROP INDEX askdocs_chunks_content;
CREATE INDEX askdocs_chunks_content ON askdocs_chunks (content_id) INCLUDE (id);
""",
}
