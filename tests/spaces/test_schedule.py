import math

import pytest

from budgetune.spaces import Schedule, validate_budget


def test_default_d_ff_is_four_times_width():
    assert Schedule(d_model=64, n_heads=2).d_ff == 256
    assert Schedule(d_model=64, n_heads=2, d_ff=100).d_ff == 100


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"d_model": 60, "n_heads": 7}, "The value of `d_model` is 60, but must be divisible"),
        ({"share_fraction": 1.0}, "`share_fraction` is 1.0, but must be in [0, 1)"),
        ({"share_fraction": -0.1}, "`share_fraction` is -0.1"),
        ({"share_unit": 3, "n_layers": 4}, "`share_unit` is 3, but must be a divisor"),
        ({"prune_sparsity": 0.99}, "`prune_sparsity` is 0.99, but must be in [0, 0.95]"),
        ({"quant_bits": 16}, "`quant_bits` is 16, but must be one of [32, 8, 4]"),
        ({"model": "t5"}, "`model` is 't5', but must be one of ['gpt2', 'bert']"),
        ({"lr": math.nan}, "`lr` is nan, but must be a finite number"),
        ({"n_layers": 2.5}, "`n_layers` is 2.5, but must be an integer"),
        ({"batch_size": True}, "`batch_size` is True, but must be an integer"),
        ({"vocab_size": 100}, "`vocab_size` is 100, but must be in [258, 65536]"),
        ({"vocab_size": 256}, "`vocab_size` is 256, but must be in [258, 65536]"),
    ],
)
def test_invalid_schedules_raise_value_errors_that_name_the_field(changes, message):
    with pytest.raises(ValueError) as info:
        Schedule(**changes)
    assert message in str(info.value)


def test_from_dict_refuses_unknown_fields_and_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown schedule field.*'widht'.*'d_model'"):
        Schedule.from_dict({"widht": 64})


def test_round_trip_through_dict_is_identity():
    s = Schedule(d_model=64, n_heads=2, share_fraction=0.1, share_unit=2)
    assert Schedule.from_dict(s.to_dict()) == s


def test_schedule_is_frozen():
    with pytest.raises(AttributeError):
        Schedule().d_model = 3


@pytest.mark.parametrize("bad", [0, -1e12, math.inf, math.nan, "1e12", 1e30])
def test_budget_must_be_positive_finite_and_plausible(bad):
    with pytest.raises(ValueError, match="The value of `budget`"):
        validate_budget(bad)


def test_budget_accepts_ints_and_floats():
    assert validate_budget(10**12) == 1e12


def test_learning_rate_defaults_to_the_family_tuned_value():
    assert Schedule().lr == 3e-3 and Schedule(model="bert").lr == 1e-3
    assert Schedule(model="bert", lr=5e-4).lr == 5e-4
