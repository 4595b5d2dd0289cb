"""How much does an exact trace cost over the plain forward pass?

For 10, 100 and 1000 tokens with the default model size (2-layer LSTM, 256 units, 10,000 words),
prints the median time of
  * forward  — the plain fused forward pass (embedding, nn.LSTM, decoder) on the same ids: the floor;
  * trace    — explorer.trace(): every layer's h, c, i, f, g, o plus next-token top-k/rank/prob;
  * cell loop — the naive Python loop over nn.LSTMCell that people usually write to get the gates;
all measured side by side in this one run, and the ratios trace/forward (the median of per-pair ratios over alternating runs) and loop/trace.

    python benchmarks/trace_speed.py [--model pretrained/fiction-lstm] [--repeats 30]

With a trained model (the default when pretrained/fiction-lstm exists) the text is real prose (the
held-out test book when ../shared is present), so next-word ranks behave as they do in use; with
--random, a random model of the default size reads random words (the worst case for ranks).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer import LanguageModel, ModelConfig, WordTokenizer, load_model, trace  # noqa: E402
from explorer.api import LoadedModel  # noqa: E402


def default_model() -> LoadedModel:
    torch.manual_seed(0)
    letters = str.maketrans("0123456789", "abcdefghij")   # words of letters only: w0 -> "wa"
    tok = WordTokenizer(["<unk>", "<eos>"] + [f"w{str(i).translate(letters)}" for i in range(9998)])
    lm = LanguageModel(ModelConfig()).eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return LoadedModel(lm, tok, {"name": "random default-size"})


def median_ms(fn, repeats):
    fn()  # warm up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def alternating_ms(fa, fb, repeats):
    """Median ms of fa and of fb, run alternately (a, b, a, b, ...) so that both see the same machine
    load, and the median of the per-pair ratios b/a."""
    fa(), fb()  # warm up
    ta, tb = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        fa()
        ta.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        fb()
        tb.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ta), statistics.median(tb), statistics.median(b / a for a, b in zip(ta, tb))


@torch.no_grad()
def forward(m, ids):
    x = m.lm.embedding(ids[None])
    out, _ = m.lm.rnn(x)
    return torch.log_softmax(m.lm.decoder(out), -1)


@torch.no_grad()
def cell_loop(m, ids):
    """Per-step LSTMCell per layer, collecting gates by hand (the usual way)."""
    lm = m.lm
    H, L = lm.config.hidden_size, lm.config.layers
    cells = m._bench_cells
    x = lm.embedding(ids)
    hs = [torch.zeros(1, H) for _ in range(L)]
    cs = [torch.zeros(1, H) for _ in range(L)]
    rec = []
    for t in range(len(ids)):
        inp = x[t:t + 1]
        for l in range(L):
            c = cells[l]
            gates = inp @ c.weight_ih.t() + c.bias_ih + hs[l] @ c.weight_hh.t() + c.bias_hh
            i, f, g, o = gates.chunk(4, 1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            cs[l] = f * cs[l] + i * g
            hs[l] = o * cs[l].tanh()
            rec.append((i, f, g, o, cs[l], hs[l]))
            inp = hs[l]
        torch.log_softmax(lm.decoder(hs[-1]), -1)
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a bundle (default: pretrained/fiction-lstm when present)")
    ap.add_argument("--random", action="store_true", help="a random model of the default size, random words")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    path = args.model or (root / "pretrained" / "fiction-lstm")
    m = default_model() if args.random or not Path(path).is_dir() else load_model(path)
    real = not (args.random or not Path(path).is_dir())
    prose = ""
    if real:
        book = root.parent / "shared" / "data" / "fiction" / "holmes_the_valley_of_fear.txt"
        prose = book.read_text(encoding="utf-8")[5000:60000] if book.is_file() else (
            'A girl walked into a bar, and she said "Can I have a drink please?" The bartender said '
            '"Certainly, miss." Holmes looked at me and said that he had been waiting for us. ') * 60
    cfg = m.config
    cells = []
    for l in range(cfg.layers):
        c = torch.nn.LSTMCell(cfg.emb_size if l == 0 else cfg.hidden_size, cfg.hidden_size)
        c.load_state_dict({k: getattr(m.lm.rnn, f"{k}_l{l}") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        cells.append(c)
    m._bench_cells = cells
    print(f"text: {'prose' if real else 'random words'}; model: {m.name}: {cfg.layers}-layer {cfg.cell.upper()}, {cfg.hidden_size} units, "
          f"{cfg.vocab_size} words; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'tokens':>6} {'forward ms':>11} {'trace ms':>9} {'cell loop ms':>13} {'trace/forward':>14} {'loop/trace':>11}")
    g = torch.Generator().manual_seed(0)
    for T in (10, 50, 100, 1000):
        if real:  # the first T-1 tokens of the prose (+ the boundary token = T)
            toks = m.tokenizer.tokenize(prose)[:T - 1]
            words = prose[:toks[-1].end]
            ids = torch.tensor([m.tokenizer.eos_id] + [t.id for t in toks])
        else:
            ids = torch.randint(2, cfg.vocab_size, (T,), generator=g)
            words = " ".join(m.tokenizer.itos[int(i)] for i in ids[1:])  # boundary + T-1 words = T tokens
        assert len(m.tokenizer.tokenize(words)) + 1 == T
        reps = args.repeats if T < 1000 else max(5, args.repeats // 3)
        f, tr, ratio = alternating_ms(lambda: forward(m, ids), lambda: trace(m, words), reps)
        lp = median_ms(lambda: cell_loop(m, ids), max(3, reps // 3))
        print(f"{T:>6} {f:>11.2f} {tr:>9.2f} {lp:>13.2f} {ratio:>14.2f} {lp / tr:>11.1f}")


if __name__ == "__main__":
    main()
