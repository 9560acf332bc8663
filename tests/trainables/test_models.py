"""The two families' losses: the chunked LM head against the whole batch's logits at once."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from budgetune.spaces import Schedule
from budgetune.trainables import FAMILIES, Batch, mask_tokens
from budgetune.trainables._models import HEAD_CHUNK


def _batch(masked: bool, b: int, t: int, v: int) -> Batch:
    x = torch.randint(2, v, (b, t + 1), generator=torch.Generator().manual_seed(0))
    if masked:
        return mask_tokens(x[:, :t], v, 1, torch.Generator().manual_seed(0))
    return Batch(x[:, :-1], x[:, 1:], None)


def _whole_batch_loss(model, family, batch: Batch) -> torch.Tensor:
    """The loss as one (N, V) logits matrix and one cross-entropy: the reference."""
    if family.masked:
        b, t = batch.inputs.shape
        positions = torch.arange(t).expand(b, t)
        hidden = model.roberta_prelayernorm(input_ids=batch.inputs,
                                            position_ids=positions).last_hidden_state
        return F.cross_entropy(model.lm_head(hidden[batch.positions]), batch.targets)
    hidden = model.transformer(input_ids=batch.inputs).last_hidden_state
    return F.cross_entropy(model.lm_head(hidden).flatten(0, 1), batch.targets.reshape(-1))


@pytest.mark.parametrize("model_name", ["gpt2", "bert"])
def test_the_chunked_head_gives_the_whole_batch_loss_and_gradients(model_name):
    s = Schedule(model=model_name, d_model=64, n_layers=2, n_heads=2, seq_len=40,
                 batch_size=16, vocab_size=512)
    family = FAMILIES[model_name]
    model = family.build(s, 0, "eager")
    batch = _batch(family.masked, s.batch_size, s.seq_len, s.vocab_size)
    n = batch.targets.numel()
    # gpt2: 640 targets, two whole chunks and a partial one; bert: 96 masked, one partial
    assert (n > HEAD_CHUNK and n % HEAD_CHUNK) if not family.masked else n < HEAD_CHUNK

    loss = family.loss(model, batch)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    reference = _whole_batch_loss(model, family, batch)
    reference.backward()

    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for k, p in model.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-7, msg=k)



def test_importing_trainables_or_compressing_leaves_other_libraries_log_levels_alone():
    """A library never sets another library's log level (STYLE.md, "good neighbours")."""
    code = """
import logging
names = ("torchao", "torch.utils._pytree")
for name in names:
    logging.getLogger(name).setLevel(logging.DEBUG)
import budgetune.trainables as t
from budgetune.spaces import Schedule
assert [logging.getLogger(n).level for n in names] == [logging.DEBUG] * 2, "on import"
s = Schedule(d_model=32, n_heads=2, n_layers=1, vocab_size=512)
model = t.FAMILIES["gpt2"].build(s, 0, "eager")
t.compressed_copy(model, t.FAMILIES["gpt2"], 0.0, 8)  # imports torchao
assert [logging.getLogger(n).level for n in names] == [logging.DEBUG] * 2, "on compressing"
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
