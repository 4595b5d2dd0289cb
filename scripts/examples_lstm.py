"""Train pytorch/examples' word_language_model LSTM on hard-wrapped fiction: an engineer's own
model, made the way that repository makes one, for `python -m explorer import`.

    python scripts/examples_lstm.py --out /tmp/exlstm [--epochs 3] [--max-train-words 150000]
                                    [--max-eval-words 50000] [--data ../shared/data/fiction]
                                    [--model LSTM] [--emsize 200] [--nhid 200] [--nlayers 2]
                                    [--dropout 0.2] [--tied|--no-tied] [--lr 20] [--clip 0.25]
                                    [--bptt 35] [--batch-size 20] [--width 70] [--seed 1111]
                                    [--threads 1] [--log-interval 200] [--dry-run]

1. The corpus, in pytorch/examples' ``data.Corpus`` layout: OUT/corpus/{train,valid,test}.txt from
   the books of SPLITS.json's train / valid / test splits, each paragraph re-wrapped with textwrap at
   --width (70) columns, paragraphs separated by one blank line, punctuation and quotation marks
   kept. --max-train-words keeps the same leading share of every training book (both authors stay
   in); --max-eval-words does the same for valid and test (0: whole books).

   Sizes: the tied 200-unit decoder over the vocabulary is most of the cost (data.Corpus's
   vocabulary is every word form of the three files, ~27k at the defaults, ~42k at 300k training
   words and whole valid / test books). On one busy CPU thread the defaults train at ~1,000
   tokens/s, evaluate at ~1,600, and 3 epochs take ~11 minutes.
2. Tokenized as data.Corpus does: every line is ``line.split() + ['<eos>']`` (so every line end,
   wrapped or blank, is an <eos>), with one Dictionary built from train, valid and test in that
   order. OUT/vocab.json is ``dictionary.idx2word`` (a JSON list in id order), OUT/vocab.txt the
   same one token per line. As in data.Corpus there is no <unk>: every word of the three files has
   an id (the importer adds an <unk> row that the model never predicts).
3. The model is model.py's ``RNNModel`` (encoder / rnn / decoder, dropout ``drop``, optional tied
   decoder), trained as main.py trains it: batchify, get_batch, repackage_hidden, NLLLoss on
   log_softmax, SGD by hand at --lr with the gradient norm clipped at --clip, and lr / 4 whenever the
   validation loss does not improve.
4. After every epoch ``torch.save(model.state_dict(), OUT/epochN.pt)`` (a plain state dict, which
   loads with weights_only=True; main.py pickles the whole model, which the importer refuses), and
   OUT/train_log.json (command, sizes, per epoch train / valid loss and perplexity, seconds,
   tokens/s; the test perplexity of the best epoch at the end). OUT/check.txt and
   OUT/ref_epochN.npy are a REF for ``explorer import --check``: the log-probabilities of the
   epoch's model on a few test lines, computed by docs/own-model.md's five lines.

--dry-run: a tiny slice (2,000 training words, 600 of valid and test), at most 3 batches an epoch,
for CI (a few seconds).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fiction"


# ------------------------------------------------------------------------------------- corpus
def read_splits(data: Path) -> dict[str, list[str]]:
    """SPLITS.json's books: valid and test are named; train is every other .txt of the folder."""
    spec = json.loads((data / "SPLITS.json").read_text(encoding="utf-8"))
    named = set(spec["valid"]) | set(spec["test"])
    books = sorted(p.name for p in data.glob("*.txt"))
    train = spec["train"] if isinstance(spec["train"], list) else [b for b in books if b not in named]
    return {"train": list(train), "valid": list(spec["valid"]), "test": list(spec["test"])}


def paragraphs(text: str) -> list[str]:
    """A book's paragraphs (runs of lines between blank lines), each on one line, spaces normalised."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paras = (" ".join(p.split()) for p in re.split(r"\n[ \t]*\n", text))
    return [p for p in paras if p]


def wrap(paras: list[str], width: int) -> str:
    """Hard-wrap each paragraph at `width` columns; a blank line between paragraphs. Words are not
    broken at hyphens (a word longer than the line, which the books do not have, would be)."""
    w = textwrap.TextWrapper(width=width, break_on_hyphens=False, break_long_words=True)
    return "\n\n".join(w.fill(p) for p in paras) + "\n"


def take_share(paras: list[str], share: float) -> list[str]:
    """The leading paragraphs of a book holding about `share` of its words (at least one)."""
    if share >= 1:
        return paras
    goal = share * sum(len(p.split()) for p in paras)
    out, n = [], 0
    for p in paras:
        if out and n >= goal:
            break
        out.append(p)
        n += len(p.split())
    return out


def build_corpus(data: Path, out: Path, width: int, max_words: dict[str, int | None]) -> dict:
    """Write out/{train,valid,test}.txt (data.Corpus layout) and return what went into each."""
    out.mkdir(parents=True, exist_ok=True)
    info = {}
    for split, books in read_splits(data).items():
        paras = {b: paragraphs((data / b).read_text(encoding="utf-8")) for b in books}
        total = sum(len(p.split()) for ps in paras.values() for p in ps)
        cap = max_words.get(split)
        share = 1.0 if not cap or cap >= total else cap / total
        parts = [take_share(paras[b], share) for b in books]
        text = wrap([p for ps in parts for p in ps], width)
        (out / f"{split}.txt").write_text(text, encoding="utf-8")
        info[split] = {"books": books, "book_words": total, "share": round(share, 4),
                       "words": len(text.split()), "lines": text.count("\n")}
    return info


# pytorch/examples word_language_model/data.py
class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(path, "train.txt"))
        self.valid = self.tokenize(os.path.join(path, "valid.txt"))
        self.test = self.tokenize(os.path.join(path, "test.txt"))

    def tokenize(self, path):
        """Tokenizes a text file."""
        assert os.path.exists(path)
        with open(path, "r", encoding="utf8") as f:
            for line in f:
                words = line.split() + ["<eos>"]
                for word in words:
                    self.dictionary.add_word(word)
        with open(path, "r", encoding="utf8") as f:
            idss = []
            for line in f:
                words = line.split() + ["<eos>"]
                ids = []
                for word in words:
                    ids.append(self.dictionary.word2idx[word])
                idss.append(torch.tensor(ids).type(torch.int64))
            ids = torch.cat(idss)
        return ids


# ---------------------------------------------------------------------------------------- model
# pytorch/examples word_language_model/model.py
class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            try:
                nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            except KeyError as e:
                raise ValueError("An invalid option for `--model` was supplied, "
                                 "options are ['LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU']") from e
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("When using the tied flag, nhid must be equal to emsize")
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


# ------------------------------------------------------------------------------------- training
# pytorch/examples word_language_model/main.py
def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def train_epoch(model, train_data, args, lr, epoch, criterion, max_batches=None):
    """One epoch of main.py's train(); returns (mean training loss, tokens read, seconds)."""
    model.train()
    total_loss, interval_loss, n_batches, n_tokens = 0.0, 0.0, 0, 0
    start = interval_start = time.time()
    hidden = model.init_hidden(args.batch_size)
    nb = (train_data.size(0) - 1 + args.bptt - 1) // args.bptt
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i, args.bptt)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item() * targets.numel()
        interval_loss += loss.item()
        n_batches += 1
        n_tokens += targets.numel()
        if batch % args.log_interval == 0 and batch > 0:
            cur = interval_loss / args.log_interval
            ms = (time.time() - interval_start) * 1000 / args.log_interval
            print(f"| epoch {epoch:3d} | {batch:5d}/{nb:5d} batches | lr {lr:02.2f} | ms/batch {ms:5.2f} | "
                  f"loss {cur:5.2f} | ppl {math.exp(cur):8.2f}", flush=True)
            interval_loss, interval_start = 0.0, time.time()
        if max_batches is not None and n_batches >= max_batches:
            break
    return total_loss / max(n_tokens, 1), n_tokens, time.time() - start


def evaluate(model, data_source, args, criterion, max_batches=None):
    """main.py's evaluate(): mean loss per target token (batch of 10 streams, as there)."""
    model.eval()
    total_loss, n = 0.0, 0
    hidden = model.init_hidden(data_source.size(1))
    with torch.no_grad():
        for b, i in enumerate(range(0, data_source.size(0) - 1, args.bptt)):
            if max_batches is not None and b >= max_batches:
                break
            data, targets = get_batch(data_source, i, args.bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
            n += len(data)
    return total_loss / max(n, 1)


def _ppl(loss):
    return round(math.exp(min(loss, 50)), 3)


# ------------------------------------------------------------------------------------ REF check
def check_text(corpus_dir: Path, n_lines: int) -> str:
    """`n_lines` lines of test text for --check: from the test file's first paragraph of three lines
    or more (past the title page), running on across the blank lines between paragraphs."""
    paras = (corpus_dir / "test.txt").read_text(encoding="utf-8").split("\n\n")
    start = next((i for i, p in enumerate(paras) if p.count("\n") >= 2), 0)
    lines = "\n\n".join(paras[start:]).split("\n")
    out, seen = [], 0
    for ln in lines:
        out.append(ln)
        seen += bool(ln.strip())
        if seen >= n_lines:
            break
    return "\n".join(out) + "\n"


def write_ref(model, corpus, check_path: Path, ref_path: Path) -> int:
    """docs/own-model.md's five REF lines, as they are; returns the number of rows."""
    text = open(check_path, encoding="utf-8").read()
    ids = [corpus.dictionary.word2idx[w] for w in ["<eos>"] + text.replace("\n", " <eos> ").split()]
    model.eval()
    logp = model(torch.tensor(ids).unsqueeze(1), model.init_hidden(1))[0]
    np.save(ref_path, logp.detach().reshape(len(ids), -1).numpy())
    return len(ids)


# ----------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (corpus/, epochN.pt, vocab.json, train_log.json)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the fiction folder with SPLITS.json")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-train-words", type=int, default=150_000,
                    help="cap on the training text (the same leading share of every training book); 0: all")
    ap.add_argument("--max-eval-words", type=int, default=50_000,
                    help="cap on valid and test each (leading share of each book); 0: whole books")
    ap.add_argument("--width", type=int, default=70, help="wrap the text at this many columns")
    ap.add_argument("--model", default="LSTM", choices=["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
    ap.add_argument("--emsize", type=int, default=200)
    ap.add_argument("--nhid", type=int, default=200)
    ap.add_argument("--nlayers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--tied", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--lr", type=float, default=20.0)
    ap.add_argument("--clip", type=float, default=0.25)
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--eval-batch-size", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1111)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--log-interval", type=int, default=200)
    ap.add_argument("--check-lines", type=int, default=6, help="lines of test text in check.txt (for --check)")
    ap.add_argument("--dry-run", action="store_true",
                    help="a tiny slice, at most 3 batches an epoch (for CI; a few seconds)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data, out = Path(args.data), Path(args.out)
    if not (data / "SPLITS.json").is_file():
        print(f"error: no SPLITS.json in {data} (the fiction corpus is not present)", file=sys.stderr)
        return 2
    if args.dry_run:
        args.max_train_words, args.max_eval_words = 2000, 600
    caps = {"train": args.max_train_words or None, "valid": args.max_eval_words or None,
            "test": args.max_eval_words or None}
    max_batches = 3 if args.dry_run else None
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    corpus_dir = out / "corpus"
    info = build_corpus(data, corpus_dir, args.width, caps)
    corpus = Corpus(corpus_dir)
    vocab = corpus.dictionary.idx2word
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "vocab.txt").write_text("".join(w + "\n" for w in vocab), encoding="utf-8")
    for split in ("train", "valid", "test"):
        info[split]["tokens"] = int(getattr(corpus, split).numel())
    ntokens = len(corpus.dictionary)
    print(f"corpus: {json.dumps({s: {k: v for k, v in d.items() if k != 'books'} for s, d in info.items()})}; "
          f"vocabulary {ntokens:,}", flush=True)

    train_data = batchify(corpus.train, args.batch_size)
    val_data = batchify(corpus.valid, args.eval_batch_size)
    test_data = batchify(corpus.test, args.eval_batch_size)
    model = RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers, args.dropout, args.tied)
    criterion = nn.NLLLoss()
    check_path = out / "check.txt"
    check_path.write_text(check_text(corpus_dir, args.check_lines), encoding="utf-8")

    log = {"command": " ".join(["python", "scripts/examples_lstm.py"] + list(sys.argv[1:] if argv is None else argv)),
           "args": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "corpus": info, "vocab_size": ntokens, "vocab": "vocab.json (idx2word, JSON list) / vocab.txt",
           "parameters": sum(p.numel() for p in model.parameters()),
           "tokenizer": "pytorch/examples data.Corpus: line.split() + ['<eos>'] for every line; "
                        f"text hard-wrapped at {args.width} columns, so <eos> marks a line end (--eos-means line)",
           "epochs": []}
    lr, best_val, best_epoch = args.lr, None, None
    for epoch in range(1, args.epochs + 1):
        train_loss, n_tok, secs = train_epoch(model, train_data, args, lr, epoch, criterion, max_batches)
        e0 = time.time()
        val_loss = evaluate(model, val_data, args, criterion, max_batches)
        eval_secs = time.time() - e0
        ckpt = out / f"epoch{epoch}.pt"
        torch.save(model.state_dict(), ckpt)
        rows = write_ref(model, corpus, check_path, out / f"ref_epoch{epoch}.npy")
        row = {"epoch": epoch, "lr": lr, "train_loss": round(train_loss, 4), "train_ppl": _ppl(train_loss),
               "valid_loss": round(val_loss, 4), "valid_ppl": _ppl(val_loss), "train_tokens": n_tok,
               "train_seconds": round(secs, 1), "tokens_per_s": round(n_tok / max(secs, 1e-9), 1),
               "valid_seconds": round(eval_secs, 1), "checkpoint": ckpt.name,
               "ref": f"ref_epoch{epoch}.npy ({rows} rows: <eos> then check.txt)"}
        print("-" * 89 + f"\n| end of epoch {epoch:3d} | time: {secs + eval_secs:5.1f}s | valid loss "
              f"{val_loss:5.2f} | valid ppl {math.exp(min(val_loss, 50)):8.2f} | {row['tokens_per_s']:.0f} tok/s\n"
              + "-" * 89, flush=True)
        if best_val is None or val_loss < best_val:
            best_val, best_epoch = val_loss, epoch
        else:
            lr /= 4.0
        log["epochs"].append(row)
        log["seconds"] = round(time.time() - t0, 1)
        (out / "train_log.json").write_text(json.dumps(log, indent=2), encoding="utf-8")

    model.load_state_dict(torch.load(out / f"epoch{best_epoch}.pt", weights_only=True))
    test_loss = evaluate(model, test_data, args, criterion, max_batches)
    log["best_epoch"] = best_epoch
    log["test"] = {"epoch": best_epoch, "loss": round(test_loss, 4), "ppl": _ppl(test_loss),
                   "note": "main.py's evaluate() on test.txt (10 streams, bptt 35) with the best epoch"}
    log["seconds"] = round(time.time() - t0, 1)
    (out / "train_log.json").write_text(json.dumps(log, indent=2), encoding="utf-8")
    print(f"| end of training | best epoch {best_epoch} | test loss {test_loss:5.2f} | "
          f"test ppl {math.exp(min(test_loss, 50)):8.2f} | {log['seconds']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
