"""Presentation: turns traces and analyses into things to look at. views (DataFrames and colour
scales), figures and analysis_figures (Plotly), player (the JSON the client-side player draws),
lesson (the lesson's sentences and numbers) and presets (example texts). Imports the core, training
and analysis; never imports Streamlit. Nothing below it imports it."""
