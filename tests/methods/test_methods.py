"""The generative methods in the shared loop: ``separate`` (frozen generator) and ``genseg`` (MLO).

Every run here is tiny (32 px, 6 iterations, generator width 4) and checks what the methods do
to the generator: how long it is pre-trained and on what, and which of its variables each
upper level (``method.upper``) moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from genseg.batches import Batches
from genseg.checkpoint import load_checkpoint
from genseg.config import MethodConfig, RunConfig
from genseg.generators import MaskToImage, create_generator
from genseg.methods import Method, create_method
from genseg.methods.base import TrainingContext
from genseg.run_data import load_run_data
from genseg.runs import RunPaths
from genseg.runtime import seed_everything
from genseg.stepper import SegmenterStepper
from genseg.training import TrainingHooks, build_context, train

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


def _history_columns(run: Path) -> list[str]:
    return (run / "history.csv").read_text().splitlines()[0].split(",")


def _context(config: RunConfig, run: Path) -> TrainingContext:
    """The context ``train`` would build for ``config`` (seeded as ``train`` seeds), without the loop."""
    seed_everything(config.train.seed)
    return build_context(config, load_run_data(config, RunPaths(run)), torch.device("cpu"), progress=False)


@dataclass
class RecordingBatches(Batches):
    """Batches that keep the images of every real batch they draw (the generator's draws included)."""

    drawn: list[Tensor] = field(default_factory=list)

    def real(self) -> tuple[Tensor, Tensor]:
        images, masks = super().real()
        self.drawn.append(images)
        return images, masks


@dataclass
class RecordingStepper(SegmenterStepper):
    """A segmenter stepper that records which kind of step each call takes."""

    calls: list[str] = field(default_factory=list)

    def step(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        self.calls.append("step")
        return super().step(*args, **kwargs)

    def step_with(self, grads: list[Tensor]) -> None:
        self.calls.append("step_with")
        super().step_with(grads)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("methods")


@pytest.fixture(scope="module")
def separate_run(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], runs_dir: Path) -> Path:
    train(tiny_config(tiny_phantom, "separate"), runs_dir / "separate", progress=False)
    return runs_dir / "separate"


@dataclass
class GenSegRun:
    root: Path
    config: RunConfig
    alphas_after: dict[int, list[Tensor]]  # iteration -> the generator's A after it


@pytest.fixture(scope="module")
def genseg_run(tiny_phantom: Path, tiny_config: Callable[..., RunConfig], runs_dir: Path) -> GenSegRun:
    """A genseg run with the paper's upper level (A), recording A after every iteration."""
    config = tiny_config(tiny_phantom, "genseg", options={"upper": "arch"})
    alphas_after: dict[int, list[Tensor]] = {}

    def record_alphas(done: int, method: Method) -> None:
        alphas_after[done] = [alpha.detach().clone() for alpha in method.synthesis.generator.arch_parameters()]

    train(config, runs_dir / "genseg", progress=False, hooks=TrainingHooks(after_iteration=record_alphas))
    return GenSegRun(runs_dir / "genseg", config, alphas_after)


def test_unknown_method_names_the_available_ones() -> None:
    with pytest.raises(ValueError,
                       match="'gensegg'; available: supervised, augment, copypaste, separate, genseg, semisup"):
        create_method("gensegg", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["separate", "genseg"])
def test_pretraining_takes_the_configured_steps_on_training_pairs_only(
    method: str, tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    context = _context(tiny_config(tiny_phantom, method), tmp_path / "run")
    batches = RecordingBatches(**vars(context.batches))
    create_method(method, replace(context, batches=batches)).prepare(tmp_path / "run")

    assert load_checkpoint(RunPaths(tmp_path / "run").pretrain)["synthesis"]["pretrained_steps"] == 3
    assert len(batches.drawn) == 3  # one batch of real pairs per step
    for image in torch.cat(batches.drawn):
        assert any(torch.equal(image, real) for real in batches.train.images)
        assert not any(torch.equal(image, held_out) for held_out in context.validation.images)


def test_separate_keeps_the_pretrained_generator_frozen(separate_run: Path) -> None:
    run = separate_run
    assert (run / "final.pt").is_file() and "generator" in load_checkpoint(run / "best.pt")
    assert _all_equal(_weights(_final_generator(run)), _weights(_pretrained_generator(run)))
    assert _all_equal(_alphas(_final_generator(run)), _alphas(_pretrained_generator(run)))


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
    pretrain = RunPaths(out).pretrain
    written = (pretrain.stat().st_ino, pretrain.stat().st_mtime_ns)
    train(genseg_run.config, out, resume=True, progress=False)

    assert (pretrain.stat().st_ino, pretrain.stat().st_mtime_ns) == written  # pre-training is not repeated
    resumed, uninterrupted = load_checkpoint(out / "final.pt"), load_checkpoint(genseg_run.root / "final.pt")
    assert _same_state(resumed["segmenter"], uninterrupted["segmenter"])
    assert _same_state(resumed["generator"], uninterrupted["generator"])  # weights, BatchNorm statistics and A
    assert any(alpha.any() for alpha in _alphas(_generator(resumed["generator"], resumed)))
    resumed_critic = load_checkpoint(out / "last.pt")["method"]["synthesis"]["discriminator"]
    uninterrupted_critic = load_checkpoint(genseg_run.root / "last.pt")["method"]["synthesis"]["discriminator"]
    assert _same_state(resumed_critic, uninterrupted_critic)


def test_genseg_without_upper_level_keeps_alphas_at_zero_but_trains_the_gan(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    train(tiny_config(tiny_phantom, "genseg", options={"upper": "none"}), tmp_path / "none", progress=False)
    columns = _history_columns(tmp_path / "none")
    assert "upper_loss" not in columns and "d_loss" in columns  # no upper step; the critic and G step
    final = _final_generator(tmp_path / "none")
    assert _alphas(final) and all(not alpha.any() for alpha in _alphas(final))
    assert not _all_equal(_weights(final), _weights(_pretrained_generator(tmp_path / "none")))


def test_genseg_generator_upper_level_feeds_the_hypergradient_to_the_weights(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """Two runs that differ only in the feedback's size: with it, the generator's first step lands elsewhere."""
    generators = {}
    for feedback in (0.0, 0.5):
        config = tiny_config(tiny_phantom, "genseg", options={"upper": "generator", "generator_feedback": feedback})
        method = create_method("genseg", _context(config, tmp_path / str(feedback)))
        assert "upper_loss" in method.step(0)  # iteration 0: an upper step, then the generator's own
        generators[feedback] = method.synthesis.generator

    assert not _all_equal(_weights(generators[0.5]), _weights(generators[0.0]))
    assert all(not alpha.any() for alpha in _alphas(generators[0.5]))  # A is not an upper-level variable here


def test_genseg_uses_the_configured_hypergradient_estimator(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """From the same state and batch, exact and DARTS give other hypergradients of A: method.hypergradient
    picks the estimator (how close DARTS comes to exact: tests/test_mlo.py)."""
    gradients = {}
    for estimator in ("exact", "darts"):
        config = tiny_config(tiny_phantom, "genseg", options={"hypergradient": estimator})
        method = create_method("genseg", _context(config, tmp_path / estimator))
        images, masks = method.context.batches.augmented()
        draw = method.context.batches.synthetic_draw(method.synthesis.generator)
        result = method.upper_step(images, masks, draw, seed=0)
        gradients[estimator] = torch.cat([grad.flatten() for grad in result.upper])

    assert gradients["darts"].any() and gradients["exact"].any()
    assert not torch.equal(gradients["darts"], gradients["exact"])


def test_genseg_arch_upper_level_needs_a_searchable_generator(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    config = tiny_config(tiny_phantom, "genseg", generator={"searchable": False}, options={"upper": "arch"})
    with pytest.raises(ValueError, match="searchable"):
        train(config, tmp_path / "plain", progress=False)
    assert not RunPaths(tmp_path / "plain").pretrain.exists()  # refused before any training


@pytest.mark.parametrize("upper", ["arch", "none"])
def test_genseg_schedule_segmenter_every_iteration_generator_side_every_k(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, upper: str
) -> None:
    """method.every = 3 over 6 iterations: two generator (and upper) steps; the segmenter steps 6 times, on
    upper iterations with the unroll's own gradient instead of a second pass."""
    context = _context(tiny_config(tiny_phantom, "genseg", options={"upper": upper, "every": 3}), tmp_path / "run")
    stepper = RecordingStepper(**vars(context.stepper))
    method = create_method("genseg", replace(context, stepper=stepper))

    generator_steps = [iteration for iteration in range(6) if "d_loss" in method.step(iteration)]  # pix2pix's critic

    assert generator_steps == [0, 3] and len(stepper.calls) == 6
    reused = ["step_with"] if upper == "arch" else ["step"]
    assert [stepper.calls[0], stepper.calls[3]] == reused * 2  # iterations 0 and 3
    assert all(call == "step" for i, call in enumerate(stepper.calls) if i % 3)


@pytest.mark.parametrize("method_name", ["separate", "genseg"])
def test_synthetic_batch_size_sets_the_synthetic_pairs_per_step(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path, method_name: str
) -> None:
    """method.synthetic_batch_size = 1 of a batch of 2: one generated pair per step, two real ones."""
    config = tiny_config(tiny_phantom, method_name)
    config = replace(config, method=MethodConfig(method_name, {**config.method.options, "synthetic_batch_size": 1}))
    context = _context(config, tmp_path / "run")
    method = create_method(method_name, context)
    assert len(context.batches.synthetic_draw(method.synthesis.generator)) == 1
    assert context.batches.real()[0].shape[0] == 2
    assert all(torch.isfinite(torch.tensor(value)) for value in method.step(0).values())


def test_registry_is_the_one_list_of_methods() -> None:
    from genseg.plugins import METHODS, generator_methods, method_class

    assert all(method_class(name).name == name for name in METHODS)
    assert generator_methods() == ("separate", "genseg")
    assert [name for name in METHODS if method_class(name).needs_unlabeled] == ["semisup"]
    with pytest.raises(ValueError, match="unknown method .mixup.; available: supervised, augment"):
        MethodConfig("mixup")


def test_a_plain_segmenter_step_takes_the_gradient_the_unroll_reuses(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """With the default batch-norm UNet, GenSeg's reused gradient equals a plain step's (same batch)."""
    from genseg.losses import segmentation_loss
    from genseg.mlo import UnrolledProblem, hypergradient

    config = tiny_config(tiny_phantom, "separate")
    context = build_context(config, load_run_data(config, RunPaths(tmp_path / "run")), torch.device("cpu"), False)
    stepper = context.stepper
    assert any(isinstance(m, nn.BatchNorm2d) for m in stepper.segmenter.modules())
    images, masks = context.batches.real()
    synthetic = (torch.rand_like(images), masks.flip(-1))
    arch = nn.Parameter(torch.zeros(1))  # a stand-in upper level: only the lower gradient is compared
    problem = UnrolledProblem(
        segmenter=stepper.segmenter,
        real_loss=lambda forward: segmentation_loss(forward(images), masks),
        synthetic_loss=lambda forward: (1 + 0 * arch.sum()) * segmentation_loss(forward(synthetic[0]), synthetic[1]),
        validation_loss=lambda forward: segmentation_loss(forward(images), masks),
        upper=[arch], lr=1e-3)
    reused = hypergradient(problem, "exact", 1).train_grads
    stepper.optimizer = torch.optim.SGD(stepper.segmenter.parameters(), lr=1.0)
    before = [p.detach().clone() for p in stepper.segmenter.parameters()]
    stepper.step(images, masks, synthetic=synthetic)
    taken = [b - p.detach() for b, p in zip(before, stepper.segmenter.parameters())]
    assert all(torch.allclose(t, r, atol=1e-5) for t, r in zip(taken, reused))
