"""One trial: train a schedule for a FLOPs budget, yielding reports along the way.

Plain PyTorch, no Ray. The budget is the input; everything else is derived from it:

1. plan the steps: the largest count whose FLOPs fit the budget (``plan_steps``);
2. plan the learning rate over those steps (``_plan.lr_at``): cosine (linear warmup, then cosine
   decay to 10% of peak) or WSD (warmup over a fixed number of steps, the peak held, then a
   cooldown over the last ``cooldown_fraction`` of the steps);
3. plan the switch from shared to unshared blocks at round(share_fraction · steps);
4. plan the report steps: each requested fraction of the budget is reported at the first step
   whose ``train_flops`` reaches it (so a scheduler's rung is met exactly), and the last step;
5. WSD only, for each budget point C_i below the budget (``TrialConfig.points``): at the step
   where a standalone WSD run for C_i starts its cooldown, branch (``_branch``);
6. train, yielding a ``Report`` at each planned step; afterwards ``grid()`` evaluates the final
   model on the compression grid (evaluation is ``_evaluate.Evaluation``'s).

A branch copies the model and optimizer, runs C_i's cooldown on the copy to C_i's own planned
steps (its pruning ramp inside it, unshared), evaluates it and its compression grid, and
yields a point report (``point``, ``budget_flops`` = C_i, ``train_flops`` what the standalone
run spends, ``trial_flops`` what this trial has spent, branches included); then the main line
continues from the state it left, data order and random generators included. So the point is
the standalone run ``Trial(schedule, C_i)`` step for step (tests/trainables check it loss for
loss). Under WSD the switch from shared blocks is placed on the main line (round(share_fraction
· steps of ``main_line_flops``)), and a cooldown never trains shared: a point whose cooldown
starts before the switch unshares there; ``share_fraction_effective`` records what each point
really had.

Between two reports the caller may save the whole state (``state_dict``) and later continue a
new ``Trial`` of the same schedule and budget from it (``load_state_dict``): model, optimizer,
sharing, data position and random generators, so the continued run is the same run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from budgetune import flops as _flops
from budgetune.spaces import Schedule, validate_budget
from budgetune.trainables._batches import BatchSampler, unigram_loss, validation_batches
from budgetune.trainables._compress import (
    compressed_bytes,
    cubic_sparsity,
    ensure_prunable,
    final_bytes,
    measured_sparsity,
    prune_to,
)
from budgetune.trainables._data import load_data, require_mask_token
from budgetune.trainables._evaluate import Evaluation
from budgetune.trainables._models import FAMILIES, count_params
from budgetune.trainables._plan import (
    BudgetPoint,
    cooldown_start,
    lr_at,
    plan_points,
    report_steps,
)
from budgetune.trainables._report import Report
from budgetune.trainables._sharing import (
    is_shared,
    share_blocks,
    transfer_optimizer_state,
    unshare_blocks,
)

GRAD_CLIP = 1.0


@dataclass(frozen=True)
class TrialConfig:
    """How a trial runs, as opposed to what it trains (the Schedule)."""

    # "builtin", "python" (or "python:DIGEST"), a folder of train.bin/val.bin/tokenizer.json,
    # local .txt/.jsonl/.parquet files, or hf:NAME (trainables/_data.py)
    corpus: str = "builtin"
    eval_tokens: int = 16384  # validation tokens per evaluation (same windows every time)
    n_reports: int = 10  # evenly spaced reports over the budget, besides report_fractions
    report_fractions: tuple[float, ...] = ()  # e.g. ASHA rungs, as fractions of the budget
    device: str = "auto"  # "auto" takes CUDA when present, else the CPU
    attn_implementation: str = "sdpa"  # "eager" for FLOP counting
    # WSD: budgets below the trial's own at which it branches a cooldown (budget points)
    points: tuple[float, ...] = ()
    # WSD: the budget whose steps place the switch from shared blocks (default: the trial's
    # own); a standalone run equals a branch of a longer trial when given that trial's budget
    main_line_flops: float | None = None


def _make_optimizer(model: torch.nn.Module, s: Schedule) -> torch.optim.AdamW:
    """AdamW with decoupled weight decay on matrices only (nanoGPT's grouping)."""
    params = list({id(p): p for p in model.parameters()}.values())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(0.9, 0.95), eps=1e-8)


class Trial(Evaluation):
    """Train ``schedule`` for ``budget_flops``; iterate ``run()`` for its reports."""

    def __init__(self, schedule: Schedule, budget_flops: float,
                 config: TrialConfig = TrialConfig()):
        self.schedule, self.config = schedule, config
        self.budget_flops = validate_budget(budget_flops)
        self.data = load_data(config.corpus, schedule.vocab_size)
        self.family = FAMILIES[schedule.model]
        if self.family.masked:
            require_mask_token(self.data, config.corpus, "the masked LM needs; use --model gpt2")
        self.device = _pick_device(config.device)
        self.flops_per_step = _flops.flops_per_step(schedule)
        self.total_steps = _flops.plan_steps(schedule, self.budget_flops)
        self.wsd = schedule.lr_schedule == "wsd"
        self.points = plan_points(schedule, self.budget_flops, config.points)
        if config.main_line_flops and not self.wsd:
            raise ValueError("A main line needs `lr_schedule = wsd`: a cosine run's switch is "
                             "placed on its own steps.")
        self.main_line_flops = max(self.budget_flops, config.main_line_flops or 0.0)
        main_steps = _flops.plan_steps(schedule, self.main_line_flops)
        self.switch_step = round(schedule.share_fraction * main_steps)
        self.report_at = report_steps(self.total_steps, self.flops_per_step, self.budget_flops,
                                      config.report_fractions, config.n_reports)
        self.end = self.total_steps  # the last step of the run now trained (a branch's own)
        self.branch_steps = 0  # steps trained in branches (discarded copies), all counted
        self.points_done: list[float] = []
        self.branch_model: torch.nn.Module | None = None  # the last branch's model, at its point

        torch.manual_seed(schedule.seed)
        self.model = self.family.build(schedule, self.data.eot_id, config.attn_implementation)
        if self.switch_step > 0:
            blocks = share_blocks(self.family.blocks(self.model), schedule.share_unit)
            self.family.set_blocks(self.model, blocks)
        self.model.to(self.device)
        # The size of the model this trial ends with (unshared, at its target sparsity and
        # bits): what a size limit judges from the first report on.
        self.final_bytes = final_bytes(self.model, self.family, schedule.prune_sparsity,
                                       schedule.quant_bits)
        self.optimizer = _make_optimizer(self.model, schedule)
        self.sampler = BatchSampler(self.data.train, schedule.batch_size, schedule.seq_len,
                                    self.family.masked, self.data.vocab_size,
                                    self.data.mask_id, schedule.seed)
        self.valid = validation_batches(self.data.valid, schedule.batch_size, schedule.seq_len,
                                        self.family.masked, self.data.vocab_size,
                                        self.data.mask_id, config.eval_tokens)
        self.unigram_loss = unigram_loss(self.data.train, self.valid, self.data.vocab_size,
                                         self.data.unigram_counts)
        self.step, self.eval_flops, self.train_s, self.wall_before = 0, 0.0, 0.0, 0.0
        self.last_train_loss = float("nan")
        self.pruned_to = 0.0  # sparsity target of the masks now in place
        # At this step: per evaluated cell, (mean, se, n, diff_se); the as-is token losses.
        self._evaluated: dict[object, tuple[float, float, int, float]] = {}
        self._as_is_losses: torch.Tensor | None = None
        self._evaluated_at = -1
        self._started = time.perf_counter()

    # -- training ------------------------------------------------------------------------

    @property
    def shared(self) -> bool:
        return is_shared(self.family.blocks(self.model))

    @property
    def wall_s(self) -> float:
        """Seconds this run has spent in ``run()`` (training, reports, evaluation), across
        restores."""
        return self.wall_before + time.perf_counter() - self._started

    @property
    def train_flops(self) -> float:
        return self.step * self.flops_per_step  # exact: never clamped

    @property
    def trial_flops(self) -> float:
        """What this trial has trained: its main line and every branch."""
        return (self.step + self.branch_steps) * self.flops_per_step

    def unshare_step(self, end: int) -> int:
        """Where a run ending at ``end`` unshares: the switch, or (WSD) its cooldown's start if
        sooner, so that no cooldown trains shared blocks."""
        if self.wsd:
            return min(self.switch_step, cooldown_start(end, self.schedule))
        return self.switch_step

    def run(self) -> Iterator[Report]:
        """Train from the current step to the planned last one, yielding each planned report
        and, under WSD, each budget point as its branch ends."""
        self._started = time.perf_counter()
        while self.step < self.total_steps:
            for point in self.points:
                if point.start == self.step and point.budget_flops not in self.points_done:
                    yield self._branch(point)
            if self.shared and self.step >= self.unshare_step(self.total_steps):
                self.unshare()
            self._train_step()
            if self.step in self.report_at:
                yield self.report()

    def _branch(self, point: BudgetPoint) -> Report:
        """Run ``point``'s cooldown on a copy of the model and optimizer, report it with its
        compression grid, and return to the main line as it was (data, generators included)."""
        model, optimizer = self.model, self.optimizer
        sampler, rng = self.sampler.state_dict(), torch.get_rng_state()
        step, pruned_to, last_train_loss = self.step, self.pruned_to, self.last_train_loss
        self.model, self.optimizer = copy.deepcopy((model, optimizer))
        self.end = point.steps
        try:
            while self.step < point.steps:
                if self.shared and self.step >= self.unshare_step(point.steps):
                    self.unshare()
                self._train_step()
            report = self.report(point=point)
            self.branch_model = self.model  # the point's model, for a caller that keeps it
        finally:
            self.branch_steps += self.step - step
            self.model, self.optimizer = model, optimizer
            self.sampler.load_state_dict(sampler)
            torch.set_rng_state(rng)
            self.step, self.pruned_to, self.last_train_loss = step, pruned_to, last_train_loss
            self.end = self.total_steps
            self._evaluated_at = -1  # the main line's model again
        self.points_done.append(point.budget_flops)
        return report

    @property
    def blocks(self) -> torch.nn.ModuleList:
        return self.family.blocks(self.model)

    def _prune_step(self) -> None:
        s = self.schedule
        # cosine: over the last prune_fraction, after the switch; wsd: inside the cooldown
        start = cooldown_start(self.end, s) if self.wsd else self.switch_step
        target = cubic_sparsity(self.step, self.end, s.prune_sparsity,
                                s.prune_fraction, start_step=start)
        if target > self.pruned_to:
            prune_to(self.blocks, target)
            self.pruned_to = target

    def _train_step(self) -> None:
        t0 = time.perf_counter()
        self._prune_step()
        lr = lr_at(self.step, self.end, self.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.sampler.next().to(self.device)
        self.model.train()
        with self._autocast():
            loss = self.family.loss(self.model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.last_train_loss = loss.item()
        self.train_s += time.perf_counter() - t0

    def unshare(self) -> None:
        """The switch: own copies of the block weights and of their AdamW state per depth."""
        blocks, mapping = unshare_blocks(self.family.blocks(self.model))
        self.family.set_blocks(self.model, blocks)
        optimizer = _make_optimizer(self.model, self.schedule)
        transfer_optimizer_state(self.optimizer, optimizer, mapping)
        self.optimizer = optimizer

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def report(self, point: BudgetPoint | None = None) -> Report:
        """The report of the model as it stands: a branch's budget point when ``point`` is
        given (with its compression grid), else the main line's (a budget point at its last
        step, for both schedules)."""
        val_loss = self.compressed_loss(0.0, 32)  # the model as it is
        _, val_loss_se, eval_tokens, _ = self._evaluated["as is"]
        n_params, n_nonemb = count_params(self.model, self.family)
        s = self.schedule
        if s.prune_sparsity > 0 or s.quant_bits < 32:
            loss_c, bytes_c = self.evaluate_compressed(s.prune_sparsity, s.quant_bits)
            diff_se = self.compressed_diff_se(s.prune_sparsity, s.quant_bits)
        else:  # nothing to compress: the compressed model is the model
            loss_c, bytes_c = val_loss, compressed_bytes(self.model, self.family, 0.0, 32)
            diff_se = 0.0
        end = self.end
        is_point = point is not None or self.step >= self.total_steps
        grid = tuple(cell.to_dict() for cell in self.grid()) if point is not None else ()
        return Report(
            step=self.step,
            tokens=self.step * _flops.tokens_per_step(s),
            epochs=self.step * _flops.tokens_per_step(s) / len(self.data.train),
            train_flops=self.train_flops,
            eval_flops=self.eval_flops,
            wall_s=self.wall_s,
            train_s=self.train_s,
            current_lr=lr_at(self.step - 1, end, s),
            train_loss=self.last_train_loss,
            n_params=n_params,
            n_params_nonemb=n_nonemb,
            shared=self.shared,
            val_loss=val_loss,
            val_loss_se=val_loss_se,
            eval_tokens=eval_tokens,
            unigram_loss=self.unigram_loss,
            val_loss_compressed=loss_c,
            val_loss_diff_se=diff_se,
            compressed_bytes=bytes_c,
            sparsity=measured_sparsity(self.blocks),
            completed=point is None and self.step >= self.total_steps,
            budget_flops=point.budget_flops if point is not None else self.budget_flops,
            point=is_point,
            trial_flops=self.trial_flops,
            main_line_flops=self.main_line_flops,
            share_fraction_effective=min(self.step, self.unshare_step(end)) / self.step,
            grid=grid,
        )

    # -- checkpointing -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, object]:
        """Everything needed to continue this run exactly; tensors and plain values only, so
        it can be saved with ``torch.save`` and read back with ``weights_only=True``."""
        return {
            "schedule": self.schedule.to_dict(),
            "budget_flops": self.budget_flops,
            "step": self.step,
            "shared": self.shared,
            "pruned_to": self.pruned_to,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "eval_flops": self.eval_flops,
            "train_s": self.train_s,
            "wall_s": self.wall_s,
            "last_train_loss": self.last_train_loss,
            "branch_steps": self.branch_steps,
            "points_done": list(self.points_done),
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        same_trial = state["budget_flops"] == self.budget_flops
        if state["schedule"] != self.schedule.to_dict() or not same_trial:
            raise ValueError(
                "The checkpoint is of another schedule or budget; restore it into a Trial of "
                "the schedule and budget that saved it."
            )
        if self.shared and not state["shared"]:
            self.unshare()
        self.pruned_to = float(state["pruned_to"])
        if self.pruned_to > 0:
            ensure_prunable(self.blocks)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.eval_flops = float(state["eval_flops"])
        self.train_s = float(state["train_s"])
        self.wall_before = float(state["wall_s"])
        self.last_train_loss = float(state["last_train_loss"])
        self.branch_steps = int(state.get("branch_steps", 0))
        self.points_done = [float(b) for b in state.get("points_done", [])]
        self._evaluated_at = -1  # another model now
        self._started = time.perf_counter()


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
