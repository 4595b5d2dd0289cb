"""Streamlit front end: pages and shared helpers (see app.py)."""
