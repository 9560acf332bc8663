"""What a trial reports at each planned step (the trial's part of the `reports` table)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Report:
    step: int  # optimizer steps taken
    tokens: int  # training tokens seen
    epochs: float  # tokens / tokens in the training split
    train_flops: float  # step × FLOPs per step, exactly  # FLOPs
    eval_flops: float  # all evaluation so far, never charged to the budget  # FLOPs
    wall_s: float  # seconds since the trial started (across restores)
    train_s: float  # seconds inside training steps alone
    current_lr: float  # learning rate of the last step (the schedule's `lr` is its peak)
    train_loss: float  # loss of the last training batch  # nats
    n_params: int  # unique parameters now (grows at the unsharing switch)
    n_params_nonemb: int  # unique parameters outside the embedding tables
    shared: bool  # blocks still shared
    val_loss: float  # held-out loss, uncompressed  # nats
    val_loss_se: float  # its standard error: std of the per-token losses / √eval_tokens  # nats
    eval_tokens: int  # target tokens evaluated (predicted positions only, for the masked LM)
    unigram_loss: float  # same targets under add-one-smoothed unigram frequencies  # nats
    val_loss_compressed: float  # the model as it stands, compressed to the target  # nats
    # Standard error of (val_loss_compressed − val_loss) from the per-token differences on the
    # same validation tokens (paired; 0 when nothing is compressed)  # nats
    val_loss_diff_se: float
    compressed_bytes: int  # size of that compressed model in bytes
    sparsity: float  # measured fraction of zeros in the block stack's weight matrices
    completed: bool  # the planned last step: the whole budget is trained ("done" is Tune's)
    # The budget this report answers for: a WSD branch's point, else the trial's own  # FLOPs
    budget_flops: float = 0.0
    point: bool = False  # a budget point: the learning rate annealed for budget_flops
    trial_flops: float = 0.0  # what the trial has trained, WSD branches included  # FLOPs
    # The budget the run's main line was planned for (WSD: the switch from shared blocks
    # sits on it; `train --main-line` re-runs the point); cosine: the budget  # FLOPs
    main_line_flops: float = 0.0
    share_fraction_effective: float = 0.0  # the share of this run's steps trained shared
    grid: tuple = ()  # a WSD branch's compression grid (GridCell dicts); else after the run

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GridCell:
    """One cell of the compression grid of a finished trial (the `grid` table)."""

    sparsity: float  # block-stack sparsity of this cell
    quant_bits: int  # 32, 8 or 4
    val_loss_compressed: float  # nats
    compressed_bytes: int
    one_shot: bool  # pruned beyond what the trial was trained to, without fine-tuning
    # Standard error of (this cell − the model as is) from per-token differences on the same
    # validation tokens (paired; 0 for the model as is)  # nats
    val_loss_diff_se: float

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
