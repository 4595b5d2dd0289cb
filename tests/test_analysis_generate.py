"""Generation with state: reproducible, the same draws as LoadedModel.generate, and the trace is
exactly the network reading the prompt and then each sampled word."""
import json

import numpy as np
import pytest
import torch

from explorer import CharTokenizer, LanguageModel, ModelConfig, trace
from explorer.analysis import generate_trace
from explorer.analysis import generate as gen_mod
from explorer.api import LoadedModel

from conftest import TEXT, make_model, one_line, run_cli

PROMPT = "Mary loves John . She said"


@pytest.mark.parametrize("kw", [dict(temperature=1.0, top_k=0, seed=0), dict(temperature=0.7, top_k=5, seed=3),
                                dict(temperature=0.0, top_k=0, seed=1)])
def test_same_words_as_model_generate_and_reproducible(tiny_lstm, kw):
    g = generate_trace(tiny_lstm, PROMPT, 12, **kw)
    assert list(g.words) == tiny_lstm.generate(PROMPT, 12, **kw)
    again = generate_trace(tiny_lstm, PROMPT, 12, **kw)
    assert again.words == g.words
    np.testing.assert_array_equal(again.trace.layers[-1].h, g.trace.layers[-1].h)


def test_seeds_differ(tiny_lstm):
    outs = {generate_trace(tiny_lstm, PROMPT, 10, seed=s).words for s in range(4)}
    assert len(outs) > 1


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_trace_reads_the_prompt_then_the_sampled_ids(cell):
    m = make_model(cell, seed=6)
    g = generate_trace(m, PROMPT, 8, seed=2)
    tr, p = g.trace, trace(m, PROMPT)
    assert g.n_prompt == len(p) and len(tr) == len(p) + 8
    assert [t.id for t in tr.tokens[g.n_prompt:]] == list(g.ids)
    assert list(g.generated_rows) == list(range(len(p), len(tr)))
    for l in range(2):
        np.testing.assert_allclose(tr.layers[l].h[: len(p)], p.layers[l].h, atol=1e-6)
    # feeding the ids one at a time through the stock module gives the same states
    ids = torch.tensor([[t.id for t in tr.tokens]])
    with torch.no_grad():
        out, _ = m.lm.rnn(m.lm.embedding(ids))
    np.testing.assert_allclose(tr.layers[-1].h, out[0].numpy(), atol=1e-5)
    for j, row in enumerate(g.generated_rows):                   # each word sits at its span in the text
        t = tr.tokens[row]
        assert g.text[t.start:t.end] == g.words[j] or t.special
    df = g.frame()
    assert df["generated"].sum() == 8 and np.isnan(df["prob"].iloc[0])


def test_greedy_picks_the_top_known_word(tiny_rnn):
    g = generate_trace(tiny_rnn, PROMPT, 6, temperature=0)
    tr = g.trace
    for row in g.generated_rows:
        top = [w for w, _ in tr.top_words(row - 1, 3) if w != "<unk>"][0]
        assert tr.tokens[row].norm == top


def test_boundary_tokens_are_rendered_as_paragraph_breaks(tiny_lstm, monkeypatch):
    tok = tiny_lstm.tokenizer
    fake = [tok.eos_id, tok.stoi["mary"], tok.eos_id]
    monkeypatch.setattr(gen_mod, "sample", lambda *a, **k: fake)
    g = generate_trace(tiny_lstm, "John", 3)
    assert g.words == ("<eos>", "mary", "<eos>")
    assert [t.special for t in g.trace.tokens[-3:]] == [True, False, True]
    assert g.text == "John\n\nmary\n\n"


def test_limits(tiny_lstm):
    with pytest.raises(ValueError):
        generate_trace(tiny_lstm, PROMPT, -1)
    g = generate_trace(tiny_lstm, PROMPT, 0)
    assert g.words == () and len(g.trace) == len(trace(tiny_lstm, PROMPT))


# ------------------------------------------- issue 14: generation follows the trace's boundary rule
@pytest.mark.parametrize("prompt", ["\n\nMary loves", "Mary loves", "\n\n"])
def test_greedy_generation_emits_the_traces_top1(tiny_lstm, prompt):
    g = generate_trace(tiny_lstm, prompt, 10, temperature=0)
    tr = g.trace
    for row in g.generated_rows:
        top = [w for w, _ in tr.top_words(row - 1, 3) if w != "<unk>"][0]
        assert tr.tokens[row].norm == top
    assert list(g.words) == tiny_lstm.generate(prompt, 10, temperature=0)


# ------------------------------------------------ issue 14: the tokenizer joins the generated text
def char_model(seed=0) -> LoadedModel:
    torch.manual_seed(seed)
    tok = CharTokenizer.build([TEXT])
    cfg = ModelConfig(cell="lstm", vocab_size=len(tok), emb_size=12, hidden_size=12, layers=1, dropout=0.0)
    lm = LanguageModel(cfg).eval()
    return LoadedModel(lm, tok, {"name": "tiny-char", "config": cfg.to_dict(), "metrics": {}}, None)


def test_character_generation_joins_characters():
    m = char_model()
    g = generate_trace(m, "ROMEO:\n", 40, seed=1)
    cont = "".join("\n\n" if w == "<eos>" else w for w in g.words)
    assert g.text == "ROMEO:\n" + cont
    assert m.tokenizer.detokenize(list(g.ids)) == cont
    for row, w in zip(g.generated_rows, g.words):     # spans point at the characters
        t = g.trace.tokens[row]
        assert t.special or g.text[t.start:t.end] == w


def test_word_generation_text_is_joined_by_the_tokenizer(tiny_lstm):
    g = generate_trace(tiny_lstm, "Mary loves", 12, seed=2)
    assert [t.id for t in tiny_lstm.tokenizer.tokenize(g.text)][-12:] == list(g.ids)


# ------------------------------------------------ issue 14: bad sampling arguments, one-line CLI errors
@pytest.mark.parametrize("extra,needle", [
    (["--temperature", "inf"], "finite"),
    (["--temperature", "nan"], "finite"),
    (["--seed", str(2 ** 64)], "seed"),
    (["--seed", "-1"], "seed"),
    (["--top-k", "-5"], "at least 0"),
    (["--n", "100000000"], "at most 2000"),
])
def test_generate_bad_arguments_are_one_line(bundle_dir, capsys, extra, needle):
    rc, out, err = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "3", *extra], capsys)
    assert rc == 2 and one_line(err) and needle in err, (rc, err)


def test_tiny_temperature_is_greedy_not_nan(bundle_dir, capsys):
    rc, out, err = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "5", "--temperature", "1e-45"], capsys)
    assert rc == 0, err
    rc0, out0, _ = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "5", "--temperature", "0"], capsys)
    assert json.loads(out)["generated"] == json.loads(out0)["generated"]
    rc, out, err = run_cli(["generate", "--model", bundle_dir, "Mary", "--n", "3", "--seed", str(2 ** 64 - 1)], capsys)
    assert rc == 0, err


def test_library_refuses_bad_sampling_arguments(tiny_lstm):
    for kw in (dict(temperature=float("inf")), dict(temperature=float("nan")), dict(top_k=-1),
               dict(seed=2 ** 64), dict(n=10 ** 8)):
        with pytest.raises(ValueError):
            tiny_lstm.generate("Mary", **{"n": 3, **kw})
