"""Evaluation of a trial's model: the validation loss of every predicted token, compressed
cells paired with the model as it stands, and the compression grid.

A mixin of ``Trial``: it reads the trial's ``model``, ``blocks``, ``family``, ``schedule``,
``valid`` batches, ``device``, ``step`` and ``pruned_to``, and charges ``eval_flops``. Cells are
evaluated once per step (``_evaluated``, reset when the step changes), so a report and the grid
of the same model share them.
"""

from __future__ import annotations

import math

import torch

from budgetune import flops as _flops
from budgetune.trainables._compress import compressed_bytes, compressed_copy
from budgetune.trainables._report import GridCell

GRID_SPARSITIES = (0.0, 0.5, 0.75, 0.9)
GRID_BITS = (32, 8, 4)


class Evaluation:
    @torch.no_grad()
    def token_losses(self, model: torch.nn.Module | None = None) -> torch.Tensor:
        """The validation loss of every predicted token (nats, float64), charged to
        ``eval_flops``."""
        model = self.model if model is None else model
        model.eval()
        losses = []
        for batch in self.valid:
            batch = batch.to(self.device)
            with self._autocast():
                losses.append(self.family.loss(model, batch, reduction="none"))
            self.eval_flops += batch.inputs.numel() * _flops.eval_flops_per_token(self.schedule)
        return torch.cat(losses).double().cpu()

    def evaluate(self, model: torch.nn.Module | None = None) -> float:
        """Mean validation loss (nats per predicted token), charged to ``eval_flops``."""
        return float(self.token_losses(model).mean())

    def evaluate_compressed(self, sparsity: float, quant_bits: int) -> tuple[float, int]:
        """(val loss, bytes) of the model as it stands, compressed to a target; the model
        itself is untouched. One-shot pruning covers what gradual pruning has not reached."""
        bits = 32 if self._is_as_is(sparsity, quant_bits) else quant_bits
        return self.compressed_loss(sparsity, quant_bits), compressed_bytes(
            self.model, self.family, sparsity, bits)

    def compressed_diff_se(self, sparsity: float, quant_bits: int) -> float:
        """The standard error of (this cell − the model as is), from their per-token
        differences on the same validation tokens (0 for the model as is): the two losses are
        measured paired, so their difference is far more precise than either loss alone."""
        self.compressed_loss(sparsity, quant_bits)
        key = "as is" if self._is_as_is(sparsity, quant_bits) else (sparsity, quant_bits)
        return self._evaluated[key][3]

    def _is_as_is(self, sparsity: float, quant_bits: int) -> bool:
        """The model as it stands already is that compression: nothing to copy or quantize."""
        return quant_bits == 32 and sparsity <= self.pruned_to

    def compressed_loss(self, sparsity: float, quant_bits: int) -> float:
        """The validation loss of ``evaluate_compressed``, evaluated once per step: the last
        report and the grid share cells (the model as it is; the schedule's own compression),
        and evaluation is the largest cost a short trial has besides training."""
        as_is = self._is_as_is(sparsity, quant_bits)
        if self._evaluated_at != self.step:  # the model has changed since
            self._evaluated, self._evaluated_at = {}, self.step
            self._as_is_losses = None
        key = "as is" if as_is else (sparsity, quant_bits)
        if key not in self._evaluated:
            if self._as_is_losses is None:  # every cell is paired with the model as is
                self._as_is_losses = self.token_losses()
                self._evaluated["as is"] = (*_summary(self._as_is_losses), 0.0)
        if key not in self._evaluated:
            model = compressed_copy(self.model, self.family, sparsity, quant_bits)
            losses = self.token_losses(model)
            diff = losses - self._as_is_losses
            self._evaluated[key] = (*_summary(losses), _summary(diff)[1])
        return self._evaluated[key][0]

    def grid(self) -> list[GridCell]:
        """The final model at sparsity {0, .5, .75, .9} (those >= the trained target; one-shot
        beyond it) × bits {32, 8, 4}, charged to ``eval_flops``."""
        trained = self.schedule.prune_sparsity
        cells = []
        for sparsity in (x for x in GRID_SPARSITIES if x >= trained):
            for bits in GRID_BITS:
                loss, nbytes = self.evaluate_compressed(sparsity, bits)
                cells.append(GridCell(sparsity, bits, loss, nbytes, sparsity > trained,
                                      self.compressed_diff_se(sparsity, bits)))
        return cells


def _summary(losses: torch.Tensor) -> tuple[float, float, int]:
    """(mean, its standard error std/√n, n) of per-token losses (n,)."""
    n = losses.numel()
    return float(losses.mean()), float(losses.std() / math.sqrt(n)), n
