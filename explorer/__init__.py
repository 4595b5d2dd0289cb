"""RNN State Explorer backend: tokenizers, recurrent language models, exact per-token traces,
safe model bundles, analyses and figures. Never imports Streamlit."""
from .api import LoadedModel
from .bundle import list_models, load_model, save_bundle
from .errors import BundleError, CorpusError, ExplorerError, InputTooLong
from .model import LanguageModel, ModelConfig
from .tokenizer import CharTokenizer, Token, Tokenizer, WordTokenizer
from .trace import Trace, clip_text, trace

__all__ = ["LoadedModel", "list_models", "load_model", "save_bundle", "BundleError", "CorpusError",
           "ExplorerError", "InputTooLong", "LanguageModel", "ModelConfig", "CharTokenizer", "Token",
           "Tokenizer", "WordTokenizer", "Trace", "clip_text", "trace", "show"]


def show(trace_or_text, model=None, layer=None):
    """The Explore player in a Jupyter notebook (an anywidget running explorer/present/assets/player.js): a Trace,
    or a text read by `model`; `layer` 1 = the bottom layer (default: the top). See
    explorer.present.widget. The one import of a higher part from the
    top of the package, made only when called (tests/test_layout.py names it)."""
    from .present.widget import show as _show
    return _show(trace_or_text, model=model, layer=layer)
