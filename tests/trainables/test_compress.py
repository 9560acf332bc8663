"""Compression: gradual pruning reaches its target and beats one-shot, quantization costs
little, and the stated size matches a real file holding exactly the stated tensors, which
decodes to a model of the stated loss."""

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.nn.utils import prune

from budgetune.trainables import (
    Trial,
    TrialConfig,
    block_linears,
    compressed_bytes,
    compressed_copy,
    cubic_sparsity,
    embedding_bits,
    final_bytes,
    matrix_bytes,
    token_matrix,
)

CONFIG = TrialConfig(eval_tokens=4096, n_reports=3)


@pytest.fixture(scope="module")
def trained():
    """One small trained model per family (about 10 s each), shared by the tests below."""
    from budgetune.spaces import Schedule

    out = {}
    for model in ("gpt2", "bert"):
        s = Schedule(model=model, d_model=64, n_layers=2, n_heads=2, seq_len=64,
                     batch_size=16, lr=3e-3)
        trial = Trial(s, 150 * 64 * 16 * 1.8e6 * (0.35 if model == "bert" else 1), CONFIG)
        list(trial.run())
        out[model] = trial
    return out


def test_cubic_schedule_rises_from_zero_to_the_target_inside_the_window():
    values = [cubic_sparsity(t, 100, 0.8, 0.5) for t in range(100)]
    assert values[49] == 0 and values[50] == 0.0 and values[-1] == pytest.approx(0.8)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[60] > 0.8 * (1 - (1 - 0.1) ** 3) * 0.5  # cubic: fast first, slow last


@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_measured_sparsity_at_the_end_equals_the_target(model, tiny):
    s = tiny.replace(model=model, prune_sparsity=0.75, prune_fraction=0.5)
    reports = list(Trial(s, 60 * 0.26e9, CONFIG).run())
    assert reports[-1].sparsity == pytest.approx(0.75, abs=0.01)
    assert reports[0].sparsity == 0.0  # before the pruning window
    assert reports[-1].compressed_bytes < reports[-1].n_params * 4


def test_gradual_pruning_beats_one_shot_pruning_of_the_same_schedule(trained):
    dense = trained["gpt2"]  # trained without pruning
    gradual = Trial(dense.schedule.replace(prune_sparsity=0.9, prune_fraction=0.5),
                    dense.budget_flops, CONFIG)
    last = list(gradual.run())[-1]
    one_shot, _ = dense.evaluate_compressed(0.9, 32)
    assert last.sparsity == pytest.approx(0.9, abs=0.01)
    assert last.val_loss_compressed < one_shot - 0.03  # measured here: 6.26 against 6.35


@pytest.fixture(scope="module")
def well_trained():
    """Models whose blocks matter: each about 1 nat (gpt2) or 0.4 nat (bert) below unigram."""
    from budgetune.spaces import Schedule

    gpt2 = Trial(Schedule(d_model=64, n_layers=4, n_heads=2), 2e12, CONFIG)
    bert = Trial(Schedule(model="bert", d_model=128, n_layers=4), 6e12, CONFIG)
    for trial in (gpt2, bert):
        list(trial.run())
    return {"gpt2": gpt2, "bert": bert}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gpt2", "bert"])
def test_int8_costs_little_and_int4_costs_more_but_under_a_third_of_a_nat(well_trained, model):
    trial = well_trained[model]
    base = trial.evaluate()
    assert base < trial.unigram_loss  # a trained model, not noise
    int8, _ = trial.evaluate_compressed(0.0, 8)
    int4, _ = trial.evaluate_compressed(0.0, 4)
    assert abs(int8 - base) < 0.02
    assert abs(int4 - base) < 0.3
    # "costs more": 4 bits move the weights further than 8. Not the losses' order: at this
    # scale both cost under 1e-3 nat, within the rounding of kernels that differ between CPUs
    # (one CI machine measured int4 - base = 6e-6 < int8 - base = 9e-6).
    assert 4 * _weight_error(trial, 8) < _weight_error(trial, 4) < 0.2


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("bits", [8, 4])
def test_the_token_matrix_is_quantized_once_and_the_lookup_reads_the_heads_numbers(
        trained, model, bits):
    """Whole-model compression: the LM head is quantized at ``embedding_bits`` (int8, one scale
    per vocabulary row) and the embedding looks up exactly its dequantized numbers; the size
    counts that matrix once, at those bits."""
    trial = trained[model]
    clone = compressed_copy(trial.model, trial.family, 0.0, bits)
    head = trial.family.head(clone).weight
    lookup = trial.family.embedding_modules(clone)[0].weight
    original = token_matrix(trial.model, trial.family).detach()
    assert embedding_bits(bits) == 8 and hasattr(head, "qdata")
    assert head.scale.numel() == original.shape[0]  # per vocabulary row
    assert torch.equal(lookup, head.dequantize())
    assert 0 < float((lookup - original).abs().max()) <= float(original.abs().max()) / 127
    fp32 = compressed_bytes(trial.model, trial.family, 0.0, 32)
    assert compressed_bytes(trial.model, trial.family, 0.0, bits) - fp32 == sum(
        matrix_bytes(tuple(m.weight.shape), m.weight.numel(), False, bits)
        - 4 * m.weight.numel() for m in block_linears(trial.blocks)) + (
        matrix_bytes(tuple(original.shape), original.numel(), False, 8) - 4 * original.numel())
    # the final size a trial plans from shapes is the same count
    assert final_bytes(trial.model, trial.family, 0.0, bits) == compressed_bytes(
        trial.model, trial.family, 0.0, bits)


def _weight_error(trial, bits: int) -> float:
    """The block matrices' relative error after quantization to ``bits``: ||Q(W) - W|| / ||W||."""
    clone = compressed_copy(trial.model, trial.family, 0.0, bits)
    trained = block_linears(trial.family.blocks(trial.model))
    quantized = block_linears(trial.family.blocks(clone))
    err = sum(float((q.weight.dequantize() - w.weight).detach().norm() ** 2)
              for w, q in zip(trained, quantized))
    norm = sum(float(w.weight.detach().norm() ** 2) for w in trained)
    return (err / norm) ** 0.5


def _compressed_matrices(trial, model, bits: int, sparsity: float):
    """(linear, its bits, masked) of each compressed matrix of ``model``: the block stack's,
    then the LM head, whose weight is the token embedding (tied)."""
    blocks = [(m, bits, sparsity > 0) for m in block_linears(trial.family.blocks(model))]
    return blocks + [(trial.family.head(model), embedding_bits(bits), False)]


def _stated_tensors(trial, sparsity, bits) -> dict[str, torch.Tensor]:
    """Exactly the tensors of the stated format, from the real compressed model."""
    clone = compressed_copy(trial.model, trial.family, sparsity, bits)
    tensors = {}
    # the embedding's lookup copy of the head's numbers is the same matrix: stored once
    matrices = {id(trial.family.embedding_modules(clone)[0].weight)}
    for i, (linear, bits, sparse) in enumerate(_compressed_matrices(trial, clone, bits,
                                                                    sparsity)):
        w = linear.weight
        matrices.add(id(w))
        if bits == 32:
            dense = w.detach()
            mask = dense != 0 if sparse else torch.ones_like(dense, dtype=torch.bool)
            values = dense[mask].to(torch.float32).contiguous().view(torch.uint8)
        else:
            q = w.qdata  # int8 storage of the quantized integers
            if hasattr(w, "zero_point"):
                assert int(w.zero_point.abs().max()) == 0  # symmetric: none stored
            mask = q != 0 if sparse else torch.ones_like(q, dtype=torch.bool)
            nz = q[mask].to(torch.int16) & 0xFF
            if bits == 4:
                nz = nz & 0x0F
                nz = torch.cat([nz, torch.zeros(len(nz) % 2, dtype=nz.dtype)])
                nz = nz[0::2] | (nz[1::2] << 4)
            values = nz.to(torch.uint8)
            tensors[f"m{i}.scale"] = w.scale.to(torch.float32).contiguous()
        tensors[f"m{i}.values"] = values
        if sparse:
            tensors[f"m{i}.mask"] = torch.from_numpy(np.packbits(mask.numpy().ravel()))
    for name, p in clone.named_parameters():  # each unique parameter once (tied head)
        if id(p) not in matrices:
            tensors[f"rest.{name}"] = p.detach().to(torch.float32).contiguous()
    return tensors


def _decoded_model(trial, tensors: dict[str, torch.Tensor], bits: int) -> torch.nn.Module:
    """The model rebuilt from the stated tensors alone (read back from the file)."""
    model = copy.deepcopy(trial.model)
    matrices = _compressed_matrices(trial, model, bits, 0.0)
    linears = [linear for linear, _, _ in matrices]
    for i, (linear, bits, _) in enumerate(matrices):
        if prune.is_pruned(linear):
            prune.remove(linear, "weight")
        shape, numel = linear.weight.shape, linear.weight.numel()
        mask = (torch.from_numpy(np.unpackbits(tensors[f"m{i}.mask"].numpy())[:numel].copy())
                .bool().reshape(shape) if f"m{i}.mask" in tensors
                else torch.ones(shape, dtype=torch.bool))
        values = tensors[f"m{i}.values"]
        if bits == 32:
            nonzeros = values.view(torch.float32)
        elif bits == 8:
            nonzeros = values.view(torch.int8).float()
        else:  # two's-complement nibbles, low nibble first
            nibbles = torch.stack([values & 0x0F, values >> 4], dim=1).flatten().to(torch.int16)
            nonzeros = torch.where(nibbles >= 8, nibbles - 16, nibbles).float()
        nonzeros = nonzeros[:int(mask.sum())]
        weight = torch.zeros(shape).masked_scatter(mask, nonzeros)
        if bits < 32:  # one scale per row (int8) or per group of 32 along the row (int4)
            scale = tensors[f"m{i}.scale"]
            weight = weight * scale.reshape(shape[0], -1).repeat_interleave(
                shape[1] // scale.reshape(shape[0], -1).shape[1], dim=1)
        with torch.no_grad():
            linear.weight.copy_(weight)
    matrices = {id(m.weight) for m in linears}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if id(p) not in matrices:
                p.copy_(tensors[f"rest.{name}"])
    return model


@pytest.mark.parametrize("model", ["gpt2", "bert"])
@pytest.mark.parametrize("sparsity, bits", [(0.0, 32), (0.0, 8), (0.5, 4), (0.75, 8),
                                            (0.9, 32)])
def test_a_real_file_of_the_stated_size_decodes_to_the_stated_loss(trained, tmp_path, model,
                                                                   sparsity, bits):
    trial = trained[model]
    loss = trial.compressed_loss(sparsity, bits)  # val_loss_compressed of that cell
    stated = compressed_bytes(trial.model, trial.family, sparsity, bits)
    path = tmp_path / "model.safetensors"
    save_file(_stated_tensors(trial, sparsity, bits), str(path))
    assert path.stat().st_size == pytest.approx(stated, rel=0.05)  # safetensors' header
    decoded = _decoded_model(trial, load_file(str(path)), bits)
    assert trial.evaluate(decoded) == pytest.approx(loss, abs=1e-5)


def test_grid_covers_sparsities_at_or_above_the_trained_one_and_leaves_the_model_alone(tiny):
    trial = Trial(tiny.replace(prune_sparsity=0.6, prune_fraction=0.5), 60 * 0.26e9, CONFIG)
    list(trial.run())
    before = trial.evaluate()
    cells = trial.grid()
    assert {(c.sparsity, c.quant_bits) for c in cells} == {
        (s, b) for s in (0.75, 0.9) for b in (32, 8, 4)}
    assert all(c.one_shot for c in cells)
    assert trial.evaluate() == before
    assert all(prune.is_pruned(m) for m in block_linears(trial.blocks))


def test_the_grid_reuses_the_last_reports_evaluations_and_charges_only_new_ones(tiny):
    trial = Trial(tiny.replace(quant_bits=8), 30 * 0.26e9, CONFIG)
    last = list(trial.run())[-1]
    per_evaluation = trial.eval_flops / (2 * len(trial.report_at))  # plain + int8 per report
    cells = {(c.sparsity, c.quant_bits): c for c in trial.grid()}
    assert cells[0.0, 32].val_loss_compressed == last.val_loss
    assert cells[0.0, 8].val_loss_compressed == last.val_loss_compressed
    assert trial.eval_flops - last.eval_flops == pytest.approx((len(cells) - 2) * per_evaluation)


def test_compressed_losses_carry_the_paired_standard_error_of_their_difference(tiny):
    """val_loss_diff_se: the standard error of the per-token (cell − model as is) differences
    on the same validation tokens; 0 for the model as is; the report's equals its cell's."""
    trial = Trial(tiny.replace(quant_bits=8), 30 * 0.26e9, CONFIG)
    last = list(trial.run())[-1]
    cells = {(c.sparsity, c.quant_bits): c for c in trial.grid()}
    as_is = trial.token_losses()
    n = as_is.numel()
    for (sparsity, bits), cell in cells.items():
        if (sparsity, bits) == (0.0, 32):
            assert cell.val_loss_diff_se == 0.0
            continue
        diff = trial.token_losses(compressed_copy(trial.model, trial.family, sparsity,
                                                  bits)) - as_is
        assert cell.val_loss_diff_se == pytest.approx(float(diff.std()) / n**0.5, rel=1e-6)
        assert 0 < cell.val_loss_diff_se
    assert last.val_loss_diff_se == cells[0.0, 8].val_loss_diff_se
    assert cells[0.0, 8].val_loss_diff_se < last.val_loss_se / 3  # int8: paired is precise


def test_a_pruned_run_saved_and_restored_gives_the_same_reports(tiny):
    import io

    s = tiny.replace(prune_sparsity=0.5, prune_fraction=0.6, quant_bits=8)
    config = TrialConfig(eval_tokens=1024, n_reports=6)
    budget = 40 * 0.26e9
    strip = ("wall_s", "train_s")
    straight = [{k: v for k, v in r.to_dict().items() if k not in strip}
                for r in Trial(s, budget, config).run()]
    first = Trial(s, budget, config)
    head = []
    for r in first.run():
        head.append({k: v for k, v in r.to_dict().items() if k not in strip})
        if len(head) == 4:  # inside the pruning window
            break
    assert head[-1]["sparsity"] > 0
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = Trial(s, budget, config)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    tail = [{k: v for k, v in r.to_dict().items() if k not in strip} for r in second.run()]
    assert head + tail == straight


@pytest.mark.parametrize("model, share_fraction, sparsity, bits", [
    ("gpt2", 0.5, 0.5, 8), ("gpt2", 0.0, 0.6, 32), ("bert", 0.5, 0.0, 4),
    ("bert", 0.0, 0.0, 32)])
def test_final_bytes_is_what_the_last_report_measures(tiny, model, share_fraction, sparsity,
                                                      bits):
    s = tiny.replace(model=model, n_layers=4, share_fraction=share_fraction,
                     prune_sparsity=sparsity, prune_fraction=0.5, quant_bits=bits)
    trial = Trial(s, 40 * 0.26e9, TrialConfig(eval_tokens=512, n_reports=1))
    before = trial.final_bytes
    last = list(trial.run())[-1]
    assert not last.shared and last.sparsity == pytest.approx(sparsity, abs=0.01)
    assert before == trial.final_bytes == last.compressed_bytes


def test_a_shared_trial_is_judged_on_its_final_unshared_size_from_the_first_report(tiny):
    from budgetune.search._trainable import trial_metrics  # what run_trial tells Tune

    s = tiny.replace(n_layers=4, share_fraction=0.5)
    trial = Trial(s, 40 * 0.26e9, TrialConfig(eval_tokens=512, n_reports=4))
    first = next(trial.run())
    assert first.shared
    limit = first.compressed_bytes + 1  # the shared model fits; the final one does not
    assert trial.final_bytes > limit
    metrics = trial_metrics(trial, first, limit)
    assert not metrics["feasible"] and metrics["objective"] > first.unigram_loss
    assert trial_metrics(trial, first, trial.final_bytes)["feasible"]


def test_int4_is_smaller_than_int8_at_every_width():
    """Groups of 2 or 3 weights (widths 2·p or 3·p, p a prime above 32) gave an fp32 scale per
    2 weights: int4 2.4× the bytes of int8 at width 74."""
    from budgetune.sizes import int4_group
    from budgetune.trainables import matrix_bytes

    for width in range(8, 300):
        assert width % int4_group(width) == 0
        assert matrix_bytes((3, width), 3 * width, False, 4) < matrix_bytes(
            (3, width), 3 * width, False, 8), width


@pytest.mark.parametrize("d_model, n_heads, group", [(16, 2, 16), (48, 2, 24), (33, 3, 11),
                                                    (37, 1, 37), (74, 2, 74)])
def test_int4_of_a_width_that_is_no_multiple_of_32_uses_smaller_groups(tmp_path, d_model,
                                                                       n_heads, group):
    """Rows of 16, 48, 33 or 37 weights cannot be cut into groups of 32 (torchao refuses, and
    every trial of such a width crashed at its compression grid): they take the row's largest
    divisor up to 32 (a prime row: one group), and the stated size and decoded loss hold."""
    from budgetune.sizes import int4_group
    from budgetune.spaces import Schedule
    from budgetune.trainables import flops_per_step

    assert int4_group(d_model) == group and 4 * d_model % int4_group(4 * d_model) == 0
    s = Schedule(model="gpt2", d_model=d_model, n_layers=1, n_heads=n_heads, seq_len=32,
                 batch_size=4, lr=3e-3, quant_bits=4)
    trial = Trial(s, 20 * flops_per_step(s), TrialConfig(eval_tokens=1024, n_reports=1))
    list(trial.run())
    assert {(c.sparsity, c.quant_bits) for c in trial.grid()} >= {(0.0, 4)}
    loss = trial.compressed_loss(0.0, 4)
    stated = compressed_bytes(trial.model, trial.family, 0.0, 4)
    path = tmp_path / "model.safetensors"
    tensors = _stated_tensors(trial, 0.0, 4)
    save_file(tensors, str(path))
    assert path.stat().st_size == pytest.approx(stated, rel=0.05)
    assert tensors["m0.scale"].numel() == 3 * d_model * (d_model // group)  # c_attn's groups
    decoded = _decoded_model(trial, load_file(str(path)), 4)
    assert trial.evaluate(decoded) == pytest.approx(loss, abs=1e-5)
