"""Batches for the two objectives, drawn reproducibly from a flat token stream.

Training windows start at uniformly random offsets (as in nanoGPT's ``get_batch``); the
generator's state is the data position, saved and restored with the trial. Validation windows
are fixed, evenly spaced, and masked with a fixed generator, so every schedule is scored on the
same targets.

Masked LM (BERT): exactly ``round(0.15·T)`` positions per sequence are predicted; of those 80%
become the mask token, 10% a random token and 10% stay as they were (Devlin et al. 2019). A fixed
count, rather than a Bernoulli draw, makes the head's FLOPs per step exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from budgetune.flops import n_masked

VALIDATION_MASK_SEED = 1234


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor  # (B, T) int64
    targets: torch.Tensor  # causal: (B, T) next tokens; masked: (n_masked,) original tokens
    positions: torch.Tensor | None  # masked only: (B, T) bool, where targets are predicted

    def to(self, device: torch.device) -> Batch:
        pos = None if self.positions is None else self.positions.to(device)
        return Batch(self.inputs.to(device), self.targets.to(device), pos)


class BatchSampler:
    """Random training windows of ``seq_len`` tokens (``seq_len + 1`` for the causal shift)."""

    def __init__(self, tokens: np.ndarray, batch_size: int, seq_len: int, masked: bool,
                 vocab_size: int, mask_id: int, seed: int):
        span = seq_len + (0 if masked else 1)
        if len(tokens) <= span:
            raise ValueError(
                f"The training split has {len(tokens)} tokens, but `seq_len` {seq_len} needs "
                f"more than {span}; use a larger corpus or a shorter `seq_len`."
            )
        self.tokens = tokens  # (n,) uint16/uint32, memory-mapped or not: never copied whole
        self.batch_size, self.seq_len, self.masked = batch_size, seq_len, masked
        self.vocab_size, self.mask_id = vocab_size, mask_id
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> Batch:
        span = self.seq_len + (0 if self.masked else 1)
        starts = torch.randint(0, len(self.tokens) - span, (self.batch_size,),
                               generator=self.generator)
        windows = gather(self.tokens, starts.numpy()[:, None] + np.arange(span))  # (B, span)
        if self.masked:
            return mask_tokens(windows, self.vocab_size, self.mask_id, self.generator)
        return Batch(windows[:, :-1], windows[:, 1:], None)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


def gather(tokens: np.ndarray, index: np.ndarray) -> torch.Tensor:
    """``tokens[index]`` as int64: reads only the windows' pages of a memory-mapped stream."""
    return torch.from_numpy(np.asarray(tokens[index], dtype=np.int64))


def mask_tokens(windows: torch.Tensor, vocab_size: int, mask_id: int,
                generator: torch.Generator) -> Batch:
    """BERT's 80/10/10 corruption of exactly ``n_masked(T)`` positions per row."""
    b, t = windows.shape
    k = n_masked(t)
    chosen = torch.rand(b, t, generator=generator).argsort(dim=1)[:, :k]  # (B, k)
    positions = torch.zeros(b, t, dtype=torch.bool)
    positions[torch.arange(b)[:, None], chosen] = True
    targets = windows[positions]  # (B·k,) in row-major order, as the head will see them
    inputs = windows.clone()
    action = torch.rand(b, t, generator=generator)
    random_ids = torch.randint(0, vocab_size, (b, t), generator=generator)
    inputs[positions & (action < 0.8)] = mask_id
    swap = positions & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    return Batch(inputs, targets, positions)


def validation_batches(tokens: np.ndarray, batch_size: int, seq_len: int, masked: bool,
                       vocab_size: int, mask_id: int, eval_tokens: int) -> list[Batch]:
    """Fixed, evenly spaced validation windows covering about ``eval_tokens`` tokens."""
    span = seq_len + (0 if masked else 1)
    n_windows = max(1, min(eval_tokens // seq_len, (len(tokens) - 1) // span))
    if len(tokens) <= span:
        raise ValueError(
            f"The validation split has {len(tokens)} tokens, but `seq_len` {seq_len} needs "
            f"more than {span}; use a larger corpus or a shorter `seq_len`."
        )
    starts = np.linspace(0, len(tokens) - span, n_windows).astype(np.int64)
    windows = gather(tokens, starts[:, None] + np.arange(span))  # (n_windows, span)
    generator = torch.Generator().manual_seed(VALIDATION_MASK_SEED)
    batches = []
    for chunk in windows.split(batch_size):
        if masked:
            batches.append(mask_tokens(chunk, vocab_size, mask_id, generator))
        else:
            batches.append(Batch(chunk[:, :-1], chunk[:, 1:], None))
    return batches


def unigram_loss(train_tokens: np.ndarray, batches: list[Batch], vocab_size: int,
                 counts: np.ndarray | None = None) -> float:
    """Cross-entropy (nats) of the validation targets under the training split's add-one-smoothed
    token frequencies: the loss of a model that learned no context at all. ``counts``: the
    split's id counts where the corpus cached them (a large split is then not counted again)."""
    if counts is None:
        counts = np.bincount(train_tokens, minlength=vocab_size)
    counts = counts.astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    targets = np.concatenate([b.targets.reshape(-1).numpy() for b in batches])
    return float(-log_p[targets].mean())
