"""Training: corpus reading and batching (data), the training loop with resumable checkpoints
(train), the Kneser-Ney baseline (ngram), targeted evaluations (evals) and the many-to-one author
classifier (classify). Imports the core only; never imports Streamlit."""
