"""Analyses built on the trace. Each returns plain data (dataclasses, numpy arrays, DataFrames) that
a test can check; figures.py draws them. Never imports Streamlit."""
from .attribution import METHODS, Attribution, attribute
from .compare import Comparison, compare, heldout_text
from .contrast import (DEFAULT_WORDS, Contrast, bag_of_words, bow_embedding_distance, contrast,
                       contrast_traces, next_word_comparison)
from .generate import Generation, generate_trace, sample
from .memory import (MemoryMatrix, Provenance, cell_provenance, compare_fade, fade_length, half_lives,
                     memory_matrix, occlusion_fade, replacement_fade)

__all__ = ["METHODS", "Attribution", "attribute", "Comparison", "compare", "heldout_text", "DEFAULT_WORDS", "Contrast", "bag_of_words",
           "bow_embedding_distance", "contrast", "contrast_traces", "next_word_comparison",
           "Generation", "generate_trace", "sample", "MemoryMatrix", "Provenance", "cell_provenance",
           "compare_fade", "fade_length", "half_lives", "memory_matrix", "occlusion_fade", "replacement_fade"]
