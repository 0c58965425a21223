"""What an embedding reduction returns to Python: 3LC's ``{source url: reduced url}``, and
what runstore adds to it (the reducers used, with PCA's explained variance, and the tables
deleted).

What it leaves to others: the reduction itself (the Rust library, ``src/reduce/``) and the
stored reducers' listing (``Run.reducer_list``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple


class ReduceResult(Dict[str, str]):
    """``{source table url: reduced table url}`` (3LC's return value, so it compares equal to
    the plain dict) with two attributes: ``reducers``, one dict per reducer used (``name``,
    ``method``, ``column``, ``foreign_table_url``, ``fitted_on``, ``fitted_now`` and
    ``explained_variance_ratio``: for PCA, the fraction of the variance each component
    explains; None for UMAP), and ``deleted``, the source tables deleted."""

    reducers: List[Dict[str, Any]]
    deleted: List[str]

    def __init__(self, report: Tuple[Dict[str, str], List[Dict[str, Any]], List[str]]) -> None:
        tables, reducers, deleted = report
        super().__init__(tables)
        self.reducers = reducers
        self.deleted = deleted

    @property
    def explained_variance_ratio(self) -> Dict[str, List[float]]:
        """PCA's explained variance ratio per reduced column (``{"x": [0.41, 0.22]}``); empty
        for UMAP."""
        return {
            r["column"]: r["explained_variance_ratio"]
            for r in self.reducers
            if r["explained_variance_ratio"] is not None
        }
