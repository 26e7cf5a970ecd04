"""Full-text product search: SQLite FTS5 with BM25 ranking.

Each :class:`SearchEngine` holds an in-memory FTS5 index of a catalog (title
weighted 10×, the rest — type, attributes, description, features, option
values — 1×). A query is split into words and the words are OR-ed, so a
natural-language query ranks products by BM25 instead of requiring every word;
like WebShop, the engine returns the top :data:`MAX_RESULTS` hits (ties broken by
catalog order, so results are deterministic).
"""

from __future__ import annotations

import re
import sqlite3
import threading

from steprl.envs.web.webshop.catalog import Catalog

__all__ = ["SearchEngine", "MAX_RESULTS", "query_terms"]

#: How many hits a search returns (WebShop shows the top 50, 10 per page).
MAX_RESULTS = 50
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def query_terms(query: str) -> list[str]:
    """The distinct lower-case words of ``query`` (FTS5's unicode61 tokenizer splits the same way), capped at 32."""
    seen: dict[str, None] = {}
    for word in _WORD_RE.findall(query.lower()):
        seen.setdefault(word, None)
    return list(seen)[:32]


class SearchEngine:
    """BM25 search over a :class:`~envs.web.webshop.catalog.Catalog` (thread-safe; one SQLite connection)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE products USING fts5(title, body, "
                         "tokenize='unicode61 remove_diacritics 2')")
        self._db.executemany("INSERT INTO products(rowid, title, body) VALUES (?, ?, ?)",
                             [(i, p.title, p.search_text()) for i, p in enumerate(catalog.products)])
        self._db.commit()
        self._cache: dict[str, list[str]] = {}

    def search(self, query: str, limit: int = MAX_RESULTS) -> list[str]:
        """ASINs of the best ``limit`` matches of ``query``, best first (BM25; empty if no word matches)."""
        terms = query_terms(query)
        if not terms:
            return []
        key = f"{limit}\x00{' '.join(terms)}"
        with self._lock:
            if key in self._cache:
                return list(self._cache[key])
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            rows = self._db.execute(
                "SELECT rowid FROM products WHERE products MATCH ? ORDER BY bm25(products, 10.0, 1.0), rowid LIMIT ?",
                (match, limit)).fetchall()
            asins = [self.catalog.products[r[0]].asin for r in rows]
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = asins
        return list(asins)
