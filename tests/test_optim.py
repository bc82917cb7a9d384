"""The segmenter's optimizer and learning-rate schedule."""

from __future__ import annotations

import pytest
import torch

from genseg.config import TrainConfig
from genseg.optim import build_optimizer, build_schedule, lr_factor


@pytest.mark.parametrize(("name", "kind"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                            ("sgd", torch.optim.SGD)])
def test_optimizer_by_name(name: str, kind: type) -> None:
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(2))], TrainConfig(optimizer=name, lr=0.5))
    assert type(optimizer) is kind and optimizer.param_groups[0]["lr"] == 0.5


def test_schedules_warm_up_then_decay_to_zero() -> None:
    poly = TrainConfig(schedule="poly", warmup=10, iterations=110)
    assert lr_factor(0, poly) == pytest.approx(0.1) and lr_factor(9, poly) == pytest.approx(1.0)
    assert lr_factor(10, poly) == pytest.approx(1.0) and lr_factor(60, poly) == pytest.approx(0.5**0.9)
    assert lr_factor(110, poly) == 0.0 and lr_factor(500, poly) == 0.0  # past the end (an extended run)
    cosine = TrainConfig(schedule="cosine", iterations=100)
    assert lr_factor(50, cosine) == pytest.approx(0.5)
    assert lr_factor(70, TrainConfig()) == 1.0


def test_schedule_sets_the_optimizer_rate_each_iteration() -> None:
    config = TrainConfig(schedule="poly", iterations=4, lr=1.0)
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    schedule = build_schedule(optimizer, config)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([lr_factor(i, config) for i in range(4)])
