"""LoadedModel: a trained network with its tokenizer and card, and the questions one asks of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .tokenizer import Token
from .errors import InputError

if TYPE_CHECKING:
    from .model import LanguageModel


#: Most tokens one call samples (the CLI's `generate --n` and the app's Generate page).
MAX_NEW_TOKENS = 2000
MAX_SEED = 2 ** 64 - 1


def check_sampling(n, temperature, top_k, seed) -> None:
    """ValueError with a sentence for arguments that cannot be sampled with."""
    import math
    if not 0 <= int(n) <= MAX_NEW_TOKENS:
        raise InputError(f"n must lie between 0 and {MAX_NEW_TOKENS}, not {n}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise InputError(f"temperature must be a finite number of at least 0, not {temperature}")
    if int(top_k) < 0:
        raise InputError(f"top_k must be at least 0 (0: no top-k), not {top_k}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise InputError(f"seed must lie between 0 and 2**64 - 1, not {seed}")


@dataclass(eq=False)
class LoadedModel:
    lm: "LanguageModel"
    tokenizer: object
    card: dict
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.card.get("name") or (self.path.name if self.path else "model")

    @property
    def config(self):
        return self.lm.config

    @property
    def eos_means(self) -> str:
        """What <eos> marks in this model's text, "line" or "paragraph" (explorer.tokenizer.eos_means)."""
        from .tokenizer import eos_means
        return eos_means(self)

    def trace(self, text: str, **kw):
        from .trace import trace
        return trace(self, text, **kw)

    def _ids(self, text: str) -> tuple[list[Token], torch.Tensor]:
        """The ids the network reads for `text` (trace's rule, `read_tokens`: the boundary <eos>
        first unless the text already starts with a paragraph break) and the tokens that are scored,
        i.e. every read token after the first."""
        from .trace import read_tokens
        toks = read_tokens(self.tokenizer, text, boundary=True)
        return toks[1:], torch.tensor([t.id for t in toks], dtype=torch.long)

    @torch.no_grad()
    def score(self, text: str) -> dict:
        """Natural-log probability of the text, each token given the ones before it; the first
        token is conditioned on the boundary token <eos> (the text's own when it starts with a
        paragraph break: the same tokens `trace` reads)."""
        return self.score_batch([text])[0]

    @torch.no_grad()
    def score_batch(self, texts: list[str], batch_size: int = 256) -> list[dict]:
        """score() for many texts; texts of equal token length are run together."""
        enc = [self._ids(t) for t in texts]
        out: list[dict | None] = [None] * len(texts)
        by_len: dict[int, list[int]] = {}
        for j, (_, ids) in enumerate(enc):
            by_len.setdefault(len(ids), []).append(j)
        for n, idx in by_len.items():
            for s in range(0, len(idx), batch_size):
                chunk = idx[s:s + batch_size]
                ids = torch.stack([enc[j][1] for j in chunk])            # [B, n]
                if n == 1:
                    lps = torch.zeros(len(chunk), 0)
                else:
                    logits, _ = self.lm(ids[:, :-1])
                    lps = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None])[..., 0]
                for r, j in enumerate(chunk):
                    toks = enc[j][0]
                    lp = lps[r].tolist()
                    out[j] = {"text": texts[j], "logprob": float(sum(lp)), "n_tokens": len(toks),
                              "n_unk": sum(t.unk for t in toks),
                              "tokens": [{"token": t.text, "logprob": v, "unk": t.unk} for t, v in zip(toks, lp)]}
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def next_words(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The k most probable next tokens after `text` (read after a boundary), with probabilities."""
        _, ids = self._ids(text)
        logits, _ = self.lm(ids[None])
        p = torch.softmax(logits[0, -1], -1)
        v, i = p.topk(max(1, min(k, p.numel())))
        return [(self.tokenizer.itos[int(a)], float(b)) for a, b in zip(i, v)]

    @torch.no_grad()
    def sample_ids(self, prompt: str, n: int = 20, temperature: float = 1.0, top_k: int = 0,
                   seed: int = 0) -> list[int]:
        """Token ids sampled after the prompt (read as `trace` reads it), each fed back in:
        temperature 0 is greedy, top_k > 0 keeps the k most probable (0: all), <unk> is never
        sampled. Reproducible by seed (0 .. 2**64 - 1). At most MAX_NEW_TOKENS tokens."""
        check_sampling(n, temperature, top_k, seed)
        gen = torch.Generator().manual_seed(int(seed))
        _, ids = self._ids(prompt)
        logits, state = self.lm(ids[None])
        last = logits[0, -1]
        out: list[int] = []
        for _ in range(int(n)):
            last = last.clone()
            last[self.tokenizer.unk_id] = -float("inf")
            if temperature <= 0:
                nxt = int(last.argmax())
            else:
                # shift by the maximum first, so a tiny temperature gives -inf, never inf - inf = NaN
                z = (last - last.max()) / temperature
                if top_k and top_k > 0:
                    kth = z.topk(min(top_k, z.numel())).values[-1]
                    z = torch.where(z < kth, torch.full_like(z, -float("inf")), z)
                nxt = int(torch.multinomial(torch.softmax(z, -1), 1, generator=gen))
            out.append(nxt)
            logits, state = self.lm(torch.tensor([[nxt]]), state)
            last = logits[0, -1]
        return out

    def generate(self, prompt: str, n: int = 20, temperature: float = 1.0, top_k: int = 0,
                 seed: int = 0) -> list[str]:
        """Sample n tokens after the prompt; the words (vocabulary forms, "<eos>" = paragraph end)."""
        return self.tokenizer.decode(self.sample_ids(prompt, n, temperature, top_k, seed))
