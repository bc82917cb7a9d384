"""Searchable cells: mixture weights, one-hot and discrete choices, candidates that differ in kind."""

from __future__ import annotations

import io

import pytest
import torch

from genseg.generators.cells import (
    DOWN_OPS,
    UP_OPS,
    MixedOp,
    arch_parameters,
    down_cell,
    up_cell,
    weight_parameters,
)

CELL_TYPES = {"down": (down_cell, 2, DOWN_OPS), "up": (up_cell, 0.5, UP_OPS)}
IN_CHANNELS, OUT_CHANNELS, SIZE = 6, 5, 8


def _cell(kind: str, searchable: bool = True) -> MixedOp:
    make, _, _ = CELL_TYPES[kind]
    return make(IN_CHANNELS, OUT_CHANNELS, searchable).double()


def _input() -> torch.Tensor:
    return torch.randn(2, IN_CHANNELS, SIZE, SIZE, dtype=torch.float64)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_every_candidate_resamples_by_two(kind: str) -> None:
    _, shrink, names = CELL_TYPES[kind]
    cell = _cell(kind)
    assert cell.names == names
    size = int(SIZE / shrink)
    for op in cell.ops.values():
        assert op(_input()).shape == (2, OUT_CHANNELS, size, size)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_weights_start_uniform_and_sum_to_one(kind: str) -> None:
    cell = _cell(kind)
    assert cell.alpha.shape == (len(cell.names),)
    torch.testing.assert_close(cell.weights(), torch.full((3,), 1 / 3, dtype=torch.float64))
    with torch.no_grad():
        cell.alpha.normal_()
    torch.testing.assert_close(cell.weights().sum(), torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_one_hot_alpha_gives_exactly_that_op(kind: str) -> None:
    cell, x = _cell(kind), _input()
    for index, op in enumerate(cell.ops.values()):
        with torch.no_grad():
            cell.alpha.fill_(float("-inf"))
            cell.alpha[index] = 0.0
        assert torch.equal(cell(x), op(x))


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_mixture_is_the_weighted_sum(kind: str) -> None:
    cell, x = _cell(kind), _input()
    with torch.no_grad():
        cell.alpha.copy_(torch.tensor([0.3, -1.0, 2.0]))
    expected = sum(w * op(x) for w, op in zip(cell.weights(), cell.ops.values()))
    torch.testing.assert_close(cell(x), expected)


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_discretize_keeps_the_argmax_and_freezes_it(kind: str) -> None:
    cell, x = _cell(kind), _input()
    with torch.no_grad():
        cell.alpha.copy_(torch.tensor([0.1, 2.0, -1.0]))
    assert cell.discretize() == (1, cell.names[1])
    assert torch.equal(cell(x), cell.ops[cell.names[1]](x))
    assert arch_parameters(cell) == []

    with torch.no_grad():  # alpha no longer decides anything
        cell.alpha.copy_(torch.tensor([5.0, 0.0, 0.0]))
    assert cell.chosen().index == 1
    cell(x).sum().backward()
    assert cell.alpha.grad is None


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_discrete_choice_survives_a_state_dict_round_trip(kind: str) -> None:
    cell, x = _cell(kind), _input()
    with torch.no_grad():
        cell.alpha.copy_(torch.tensor([0.0, 0.0, 1.0]))
    cell.discretize()
    buffer = io.BytesIO()
    torch.save(cell.state_dict(), buffer)
    buffer.seek(0)
    restored = _cell(kind)
    restored.load_state_dict(torch.load(buffer))
    assert restored.chosen().index == 2 and not restored.is_searching
    assert torch.equal(restored(x), cell(x))


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_non_searchable_cell_is_the_plain_pix2pix_op(kind: str) -> None:
    _, _, names = CELL_TYPES[kind]
    cell = _cell(kind, searchable=False)
    assert cell.names == names[:1] and cell.alpha is None
    assert arch_parameters(cell) == [] and len(weight_parameters(cell)) == len(list(cell.parameters()))
    x = _input()
    assert torch.equal(cell(x), cell.ops[names[0]](x))
    with pytest.raises(ValueError, match="no mixture weights"):
        cell.weights()


def _is_additive(op: torch.nn.Module) -> bool:
    a, b = _input(), _input()
    zero = torch.zeros_like(a)
    return torch.allclose(op(a + b), op(a) + op(b) - op(zero))


@pytest.mark.parametrize("kind", CELL_TYPES)
def test_candidates_differ_in_kind_so_the_mixture_is_not_one_convolution(kind: str) -> None:
    cell = _cell(kind)
    additive = [_is_additive(op) for op in cell.ops.values()]
    assert additive[0]  # the plain pix2pix op is linear: the check can tell
    assert not all(additive)
    assert not _is_additive(cell)
