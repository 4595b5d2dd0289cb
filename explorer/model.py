"""The language model: embedding -> stock recurrent stack -> decoder.

Built on `torch.nn.LSTM` / `GRU` / `RNN` unchanged, so a state dict of the stock module loads as it is
and the trace (explorer.trace) can be checked against the fused module's own outputs.
"""
from __future__ import annotations

import hashlib
import json

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"          # lstm | gru | rnn
    vocab_size: int = 10_000
    emb_size: int = 256
    hidden_size: int = 256
    layers: int = 2
    dropout: float = 0.3         # on embeddings, between layers and before the decoder (training only)
    tied: bool = True            # decoder weight = embedding weight (Press & Wolf 2017; Inan et al. 2017)
    nonlinearity: str = "tanh"   # a plain RNN's: h_t = tanh(...) or relu(...) (nn.RNN's nonlinearity)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, not {self.cell!r}")
        for name in ("vocab_size", "emb_size", "hidden_size", "layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), not {self.dropout!r}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {list(NONLINEARITIES)}, not {self.nonlinearity!r}")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise ValueError(f"only a plain RNN takes a nonlinearity; an {self.cell.upper()} has its own gates")
        if self.tied and self.emb_size != self.hidden_size:
            raise ValueError("tied embeddings need emb_size == hidden_size "
                             f"({self.emb_size} != {self.hidden_size})")

    def to_dict(self) -> dict:
        """The fields, without `nonlinearity` where it is the default tanh: a card written before the
        field existed reads the same, and the model's identity (weights_hash) does not move."""
        d = asdict(self)
        if d["nonlinearity"] == "tanh":
            del d["nonlinearity"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ValueError("config must be an object")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"config has unknown fields {sorted(unknown)}")
        return cls(**d)


class LanguageModel(nn.Module):
    """x_t -> embedding -> recurrent stack -> logits over the vocabulary for x_{t+1}."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.drop = nn.Dropout(config.dropout)
        self.embedding = nn.Embedding(config.vocab_size, config.emb_size)
        kw = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
        self.rnn = CELLS[config.cell](config.emb_size, config.hidden_size, config.layers,
                                      dropout=config.dropout if config.layers > 1 else 0.0,
                                      batch_first=True, **kw)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tied:
            self.decoder.weight = self.embedding.weight
        self._init()

    def _init(self):
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if self.config.cell == "lstm":
            # Forget-gate bias 1 (Jozefowicz et al. 2015): start by remembering.
            H = self.config.hidden_size
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        p[H:2 * H].fill_(1.0)

    @property
    def is_lstm(self) -> bool:
        return self.config.cell == "lstm"

    def init_state(self, batch: int = 1):
        z = torch.zeros(self.config.layers, batch, self.config.hidden_size)
        return (z, z.clone()) if self.is_lstm else z

    def forward(self, ids: torch.Tensor, state=None):
        """ids [batch, time] -> (logits [batch, time, vocab], final state)."""
        x = self.drop(self.embedding(ids))
        out, state = self.rnn(x, state)
        return self.decoder(self.drop(out)), state

    def forward_embeddings(self, emb: torch.Tensor, state=None):
        """Same as forward but from embeddings [batch, time, emb] (for attribution)."""
        out, state = self.rnn(emb, state)
        return self.decoder(out), state

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state):
    """Truncated BPTT: keep the values, cut the graph."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def weights_hash(lm) -> str:
    """sha256 over the model's config and state-dict tensors (name, shape, float32 bytes), sorted by name."""
    h = hashlib.sha256()
    h.update(json.dumps(lm.config.to_dict(), sort_keys=True).encode())
    for name, t in sorted(lm.state_dict().items()):
        a = t.detach().to(torch.float32).contiguous().cpu().numpy()
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()
