"""Corpus-level evidence: an index of a model's states over a whole corpus (zarr arrays plus a
Parquet token table) and the queries that read it. Imports the core and training only; never
imports Streamlit."""
