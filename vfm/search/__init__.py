"""Embeddings, indexes and search: ``vfm embed``, ``vfm index``, ``vfm search``, ``vfm dedupe``.

An index is one folder: ``index.sqlite`` (files, vectors, metadata: the truth) and a FAISS file
built from it (vfm.search.db, vfm.search.vectors). See docs/search.md.
"""
