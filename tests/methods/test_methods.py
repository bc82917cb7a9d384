"""The generative methods in the shared loop: ``separate`` (frozen generator) and ``genseg`` (MLO).

Every run here is tiny (32 px, 6 iterations, generator width 4) and checks what the methods do
to the generator: how long it is pre-trained and on what, and which of its variables each
upper level (``mlo.upper``) moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import genseg.methods.genseg
import genseg.methods.upper
from genseg.checkpoint import load_checkpoint
from genseg.config import RunConfig
from genseg.data import PairTensors
from genseg.generators import MaskToImage, create_generator
from genseg.generators.level import GeneratorLevel
from genseg.methods import create_method
from genseg.methods.base import TrainingContext
from genseg.methods.genseg import GenSeg
from genseg.runs import RunPaths
from genseg.training import train

KillRun = Callable[[RunConfig, Path, int], None]


def _generator(state: dict[str, Tensor], checkpoint: dict[str, Any]) -> MaskToImage:
    """A fresh generator of a run's settings, its network loaded (strictly) with ``state``."""
    config = RunConfig.from_dict(checkpoint["config"])
    generator = create_generator(config.generator, checkpoint["num_classes"], checkpoint["in_channels"])
    generator.network.load_state_dict(state)
    return generator


def _alphas(generator: MaskToImage) -> list[Tensor]:
    return [alpha.detach() for alpha in generator.arch_parameters()]


def _weights(generator: MaskToImage) -> list[Tensor]:
    return [weight.detach() for weight in generator.weight_parameters()]


def _all_equal(a: list[Tensor], b: list[Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal state dicts: tensors bit for bit, extra state (a cell's discrete choice) by value."""
    return a.keys() == b.keys() and all(
        torch.equal(a[key], b[key]) if isinstance(a[key], Tensor) else a[key] == b[key] for key in a
    )


def _pretrained_generator(run: Path) -> MaskToImage:
    return _generator(load_checkpoint(RunPaths(run).pretrain)["synthesis"]["generator"],
                      load_checkpoint(run / "final.pt"))


def _final_generator(run: Path) -> MaskToImage:
    final = load_checkpoint(run / "final.pt")
    return _generator(final["generator"], final)


@dataclass
class Pretraining:
    """What the generator's pre-training did, seen from inside."""

    gan_steps: int = 0
    batches: list[Tensor] = field(default_factory=list)
    train: PairTensors | None = None
    validation_images: Tensor | None = None


@contextmanager
def watch_pretraining() -> Iterator[Pretraining]:
    """Count the generator's training steps of pre-training and keep the real batches it draws."""
    seen = Pretraining()
    active = False
    pretrain, train_step, real_batch = GeneratorLevel.pretrain, GeneratorLevel.train_step, TrainingContext.real_batch

    def watched_pretrain(self: GeneratorLevel, checkpoint: Path) -> None:
        nonlocal active
        active = True
        try:
            pretrain(self, checkpoint)
        finally:
            active = False

    def watched_train_step(self: GeneratorLevel, *args: Any, **kwargs: Any) -> dict[str, float]:
        seen.gan_steps += active
        return train_step(self, *args, **kwargs)

    def watched_real_batch(self: TrainingContext) -> tuple[Tensor, Tensor]:
        images, masks = real_batch(self)
        if active:
            seen.train, seen.validation_images = self.train, self.validation.images
            seen.batches.append(images)
        return images, masks

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GeneratorLevel, "pretrain", watched_pretrain)
        patch.setattr(GeneratorLevel, "train_step", watched_train_step)
        patch.setattr(TrainingContext, "real_batch", watched_real_batch)
        yield seen


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("methods")


@pytest.fixture(scope="module")
def separate_run(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], runs_dir: Path) -> tuple[Path, Pretraining]:
    with watch_pretraining() as seen:
        train(tiny_config(tiny_phantom, "separate"), runs_dir / "separate", progress=False)
    return runs_dir / "separate", seen


@dataclass
class GenSegRun:
    root: Path
    config: RunConfig
    alphas_after: dict[int, list[Tensor]]  # iteration -> the generator's A after it
    pretraining: Pretraining


@pytest.fixture(scope="module")
def genseg_run(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], runs_dir: Path) -> GenSegRun:
    """A genseg run with the paper's upper level (A), recording A after every iteration."""
    config = tiny_config(tiny_phantom, "genseg", mlo={"upper": "arch"})
    alphas_after: dict[int, list[Tensor]] = {}
    step = GenSeg.step

    def recording_step(self: GenSeg, iteration: int) -> dict[str, float]:
        scalars = step(self, iteration)
        alphas_after[iteration + 1] = [alpha.detach().clone() for alpha in self.synthesis.generator.arch_parameters()]
        return scalars

    with pytest.MonkeyPatch.context() as patch, watch_pretraining() as seen:
        patch.setattr(GenSeg, "step", recording_step)
        train(config, runs_dir / "genseg", progress=False)
    return GenSegRun(runs_dir / "genseg", config, alphas_after, seen)


def test_unknown_method_names_the_available_ones() -> None:
    with pytest.raises(ValueError, match="'gensegg'; available: supervised, augment, separate, genseg, semisup"):
        create_method("gensegg", None)  # type: ignore[arg-type]


def test_separate_pretrains_the_generator_for_the_configured_steps_on_training_pairs(
    separate_run: tuple[Path, Pretraining],
) -> None:
    run, seen = separate_run
    best = load_checkpoint(run / "best.pt")
    assert seen.gan_steps == 3 == load_checkpoint(RunPaths(run).pretrain)["synthesis"]["pretrained_steps"]
    assert seen.train is not None and seen.validation_images is not None
    assert seen.train.case_ids == best["train_ids"]  # the budget's training pairs, no validation pair
    assert len(seen.batches) == 3
    for image in torch.cat(seen.batches):
        assert any(torch.equal(image, real) for real in seen.train.images)
        assert not any(torch.equal(image, held_out) for held_out in seen.validation_images)


def test_separate_keeps_the_pretrained_generator_frozen(separate_run: tuple[Path, Pretraining]) -> None:
    run, _ = separate_run
    assert (run / "final.pt").is_file() and "generator" in load_checkpoint(run / "best.pt")
    assert _all_equal(_weights(_final_generator(run)), _weights(_pretrained_generator(run)))
    assert _all_equal(_alphas(_final_generator(run)), _alphas(_pretrained_generator(run)))


def test_genseg_pretrains_the_generator_on_training_pairs(genseg_run: GenSegRun) -> None:
    seen = genseg_run.pretraining
    assert seen.gan_steps == 3 and seen.train is not None
    assert seen.train.case_ids == load_checkpoint(genseg_run.root / "best.pt")["train_ids"]


def test_genseg_arch_upper_level_tunes_the_alphas(genseg_run: GenSegRun) -> None:
    pretrained = _pretrained_generator(genseg_run.root)
    assert _alphas(pretrained) and all(not alpha.any() for alpha in _alphas(pretrained))  # A starts at zero
    assert any(alpha.any() for alpha in genseg_run.alphas_after[1])  # the first upper step moves A
    assert any(alpha.any() for alpha in _alphas(_final_generator(genseg_run.root)))
    assert not _all_equal(_weights(_final_generator(genseg_run.root)), _weights(pretrained))  # GAN keeps training


def test_genseg_best_checkpoint_holds_the_alphas_of_its_iteration(genseg_run: GenSegRun) -> None:
    best = load_checkpoint(genseg_run.root / "best.pt")
    assert _all_equal(_alphas(_generator(best["generator"], best)), genseg_run.alphas_after[best["iteration"]])
    final = load_checkpoint(genseg_run.root / "final.pt")
    assert _all_equal(_alphas(_generator(final["generator"], final)), genseg_run.alphas_after[6])


def test_genseg_resume_reproduces_segmenter_generator_and_alphas(
    genseg_run: GenSegRun, tmp_path: Path, kill_run: KillRun
) -> None:
    out = tmp_path / "killed"
    kill_run(genseg_run.config, out, 4)  # killed in iteration 5, an upper-level step, after checkpoint 4
    with watch_pretraining() as seen:
        train(genseg_run.config, out, resume=True, progress=False)

    assert seen.gan_steps == 0  # pre-training is not repeated
    resumed, uninterrupted = load_checkpoint(out / "final.pt"), load_checkpoint(genseg_run.root / "final.pt")
    assert _same_state(resumed["segmenter"], uninterrupted["segmenter"])
    assert _same_state(resumed["generator"], uninterrupted["generator"])  # weights, BatchNorm statistics and A
    assert any(alpha.any() for alpha in _alphas(_generator(resumed["generator"], resumed)))
    resumed_critic = load_checkpoint(out / "last.pt")["method"]["synthesis"]["discriminator"]
    uninterrupted_critic = load_checkpoint(genseg_run.root / "last.pt")["method"]["synthesis"]["discriminator"]
    assert _same_state(resumed_critic, uninterrupted_critic)


def test_genseg_without_upper_level_keeps_alphas_at_zero_but_trains_the_gan(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hypergradient(*args: Any) -> None:
        raise AssertionError("the ablation computes no hypergradient")

    monkeypatch.setattr(genseg.methods.genseg, "hypergradient", no_hypergradient)
    train(tiny_config(tiny_phantom, "genseg", mlo={"upper": "none"}), tmp_path / "none", progress=False)
    final = _final_generator(tmp_path / "none")
    assert _alphas(final) and all(not alpha.any() for alpha in _alphas(final))
    assert not _all_equal(_weights(final), _weights(_pretrained_generator(tmp_path / "none")))


def test_genseg_generator_upper_level_feeds_the_hypergradient_to_the_weights(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feedback_steps = []
    add_hypergradient = genseg.methods.upper.add_hypergradient

    def recording_add(params: Any, grads: list[Tensor], weight: float = 1.0) -> None:
        feedback_steps.append(weight * sum(float(g.abs().sum()) for g in grads))
        add_hypergradient(params, grads, weight=weight)

    monkeypatch.setattr(genseg.methods.upper, "add_hypergradient", recording_add)
    train(tiny_config(tiny_phantom, "genseg", mlo={"upper": "generator"}), tmp_path / "gen", progress=False)

    assert len(feedback_steps) == 3 and all(size > 0 for size in feedback_steps)  # iterations 0, 2, 4
    final = _final_generator(tmp_path / "gen")
    assert not _all_equal(_weights(final), _weights(_pretrained_generator(tmp_path / "gen")))
    assert all(not alpha.any() for alpha in _alphas(final))  # A is not an upper-level variable here


def test_genseg_darts_hypergradient_runs(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    estimators = []
    hypergradient = genseg.methods.genseg.hypergradient

    def recording_hypergradient(problem: Any, method: str, steps: int) -> Any:
        estimators.append(method)
        return hypergradient(problem, method, steps)

    monkeypatch.setattr(genseg.methods.genseg, "hypergradient", recording_hypergradient)
    train(tiny_config(tiny_phantom, "genseg", mlo={"hypergradient": "darts"}), tmp_path / "darts", progress=False)

    assert estimators == ["darts"] * 3
    assert any(alpha.any() for alpha in _alphas(_final_generator(tmp_path / "darts")))


def test_genseg_arch_upper_level_needs_a_searchable_generator(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    config = tiny_config(tiny_phantom, "genseg", generator={"searchable": False}, mlo={"upper": "arch"})
    with pytest.raises(ValueError, match="searchable"):
        train(config, tmp_path / "plain", progress=False)
    assert not RunPaths(tmp_path / "plain").pretrain.exists()  # refused before any training


@pytest.mark.parametrize("upper", ["arch", "none"])
def test_genseg_schedule_segmenter_every_iteration_generator_side_every_k(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    upper: str,
) -> None:
    """mlo.every = 3 over 6 iterations: two GAN (and upper) steps; the segmenter steps 6 times, on
    upper iterations with the unroll's own gradient instead of a second pass."""
    calls: list[str] = []
    for owner, name in ((TrainingContext, "segmenter_step"), (TrainingContext, "segmenter_step_with"),
                        (GeneratorLevel, "train_step")):
        original = getattr(owner, name)

        def recording(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recording)
    train(tiny_config(tiny_phantom, "genseg", mlo={"upper": upper, "every": 3}), tmp_path / "run", progress=False)

    steps = calls[3:]  # after the 3 pre-training GAN steps
    segmenter = [c for c in steps if c != "train_step"]
    assert len(segmenter) == 6 and steps.count("train_step") == 2
    reused = ["segmenter_step_with"] if upper == "arch" else ["segmenter_step"]
    assert [segmenter[0], segmenter[3]] == reused * 2  # iterations 0 and 3
    assert all(c == "segmenter_step" for i, c in enumerate(segmenter) if i % 3)


def test_registry_is_the_one_list_of_methods() -> None:
    from genseg.config import TrainConfig
    from genseg.methods import METHOD_NAMES, generator_methods, method_class

    assert all(method_class(name).name == name for name in METHOD_NAMES)
    assert generator_methods() == ("separate", "genseg")
    assert [name for name in METHOD_NAMES if method_class(name).needs_unlabeled] == ["semisup"]
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="mixup")


def test_a_plain_segmenter_step_takes_the_gradient_the_unroll_reuses(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """With the default batch-norm UNet, GenSeg's reused gradient equals a plain step's (same batch)."""
    from genseg.losses import segmentation_loss
    from genseg.mlo import UnrolledProblem, hypergradient
    from genseg.runs import load_run_data
    from genseg.training import build_context

    config = tiny_config(tiny_phantom, "separate")
    context = build_context(config, load_run_data(config, RunPaths(tmp_path / "run")), torch.device("cpu"), False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in context.segmenter.modules())
    images, masks = context.real_batch()
    synthetic = (torch.rand_like(images), masks.flip(-1))
    arch = nn.Parameter(torch.zeros(1))  # a stand-in upper level: only the lower gradient is compared
    problem = UnrolledProblem(
        segmenter=context.segmenter,
        real_loss=lambda forward: segmentation_loss(forward(images), masks),
        synthetic_loss=lambda forward: (1 + 0 * arch.sum()) * segmentation_loss(forward(synthetic[0]), synthetic[1]),
        validation_loss=lambda forward: segmentation_loss(forward(images), masks),
        upper=[arch], lr=1e-3)
    reused = hypergradient(problem, "exact", 1).train_grads
    context.optimizer = torch.optim.SGD(context.segmenter.parameters(), lr=1.0)
    before = [p.detach().clone() for p in context.segmenter.parameters()]
    context.segmenter_step(images, masks, synthetic=synthetic)
    taken = [b - p.detach() for b, p in zip(before, context.segmenter.parameters())]
    assert all(torch.allclose(t, r, atol=1e-5) for t, r in zip(taken, reused))
