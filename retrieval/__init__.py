"""Support-log ingest and retrieval: parsing, PII scrubbing, embedding and FAISS search.

Nothing here loads a model at import time; see :class:`retrieval.embedder.Embedder`.
"""
