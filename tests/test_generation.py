"""Synthetic-pair export from a trained run, and generator-only pre-training (API and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genseg.cli import app
from genseg.config import DataConfig, GeneratorConfig, MethodConfig, RunConfig, SegmenterConfig, TrainConfig
from genseg.data import DataError, index_cases, make_phantom, read_mask, write_mask_png
from genseg.generation import generate_pairs, load_generator
from genseg.training import train


def _tiny_run(data: Path, out: Path, method: str, generator: str = "pix2pix") -> Path:
    kind = {"ngf": 4} if generator == "pix2pix" else {}
    config = RunConfig(
        data=DataConfig(root=data, budget=4, size=32),
        segmenter=SegmenterConfig(options={"base": 4}),
        generator=GeneratorConfig(generator, ndf=4, pretrain_iterations=2, **kind),
        method=MethodConfig(method),
        train=TrainConfig(iterations=2, val_every=1, batch_size=2),
    )
    train(config, out, progress=False)
    return out


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("phantom"), n_cases=12, size=32)


@pytest.fixture(scope="module")
def separate_run(phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_run(phantom, tmp_path_factory.mktemp("runs") / "separate", "separate")


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_generate_pairs_writes_a_training_ready_folder(separate_run: Path, phantom: Path, tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    written = generate_pairs(separate_run, phantom / "masks", out, n=5, seed=0)

    assert [path.name for path in written] == [f"syn_{i:04d}.png" for i in range(5)]
    assert sorted(p.name for p in (out / "masks").iterdir()) == [p.name for p in written]
    for path in written:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (32, 32)
        labels = read_mask(out / "masks" / path.name)
        assert labels.shape == (32, 32) and set(np.unique(labels)) <= {0, 1} and labels.any()
    assert index_cases(out).ids == [path.stem for path in written]
    with Image.open(out / "contact_sheet.png") as sheet:  # 5 rows of mask | synthetic | real
        assert sheet.size == (4 + 3 * (128 + 4), 18 + 5 * (128 + 4))


def test_generate_pairs_is_reproducible_by_seed(separate_run: Path, phantom: Path, tmp_path: Path) -> None:
    runs = {name: tmp_path / name for name in ("a", "b", "c")}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_pairs(separate_run, phantom / "masks", runs[name], n=3, seed=seed)
    for folder in ("images", "masks"):
        assert _files(runs["a"] / folder) == _files(runs["b"] / folder)
        assert _files(runs["a"] / folder) != _files(runs["c"] / folder)


def test_generate_pairs_omits_the_real_column_without_real_images(separate_run: Path, phantom: Path,
                                                                  tmp_path: Path) -> None:
    empty = tmp_path / "no_images"
    empty.mkdir()
    generate_pairs(separate_run, phantom / "masks", tmp_path / "out", n=2, real_images_dir=empty)
    with Image.open(tmp_path / "out" / "contact_sheet.png") as sheet:
        assert sheet.size[0] == 4 + 2 * (128 + 4)


def test_load_generator_refuses_a_run_without_generator(phantom: Path, tmp_path: Path) -> None:
    run = _tiny_run(phantom, tmp_path / "augment", "augment")
    with pytest.raises(ValueError, match="method augment, which has no generator"):
        load_generator(run)


def test_generate_pairs_refuses_unusable_masks(separate_run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a mask")
    with pytest.raises(DataError, match="no mask files"):
        generate_pairs(separate_run, empty, tmp_path / "out", n=2)
    wrong = tmp_path / "three_classes"
    write_mask_png(wrong / "a.png", np.array([[0, 1], [2, 2]]))
    with pytest.raises(DataError, match=r"a\.png: mask holds label value\(s\) 2, which the run's training masks never"):
        generate_pairs(separate_run, wrong, tmp_path / "out", n=2)
    assert not (tmp_path / "out").exists()


def test_pairs_are_drawn_from_and_written_in_the_datas_own_label_values(phantom: Path, tmp_path: Path) -> None:
    sevens = tmp_path / "sevens"  # the phantom with its foreground stored as 7
    for case in index_cases(phantom).cases.values():
        (sevens / "images").mkdir(parents=True, exist_ok=True)
        (sevens / "images" / case.image_path.name).write_bytes(case.image_path.read_bytes())
        write_mask_png(sevens / "masks" / case.mask_path.name, read_mask(case.mask_path) * 7)
    run = _tiny_run(sevens, tmp_path / "run", "separate")
    written = generate_pairs(run, sevens / "masks", tmp_path / "synthetic", n=3)
    stored = [set(np.unique(read_mask(tmp_path / "synthetic" / "masks" / path.name)).tolist()) for path in written]
    assert all(values <= {0, 7} for values in stored) and any(7 in values for values in stored)


def test_generate_pairs_does_not_mix_with_earlier_output(separate_run: Path, phantom: Path, tmp_path: Path) -> None:
    generate_pairs(separate_run, phantom / "masks", tmp_path / "out", n=1)
    with pytest.raises(FileExistsError, match="already holds files"):
        generate_pairs(separate_run, phantom / "masks", tmp_path / "out", n=1)


def test_cli_pretrain_generator_then_generate(phantom: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "pretrained"
    result = runner.invoke(app, ["pretrain-generator", "--data", str(phantom), "--out", str(run), "--budget", "4",
                                 "--iterations", "2", "--size", "32", "--ngf", "4", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    generator = load_generator(run)
    assert generator.config.generator.pretrain_iterations == 2 and generator.num_classes == 2

    out = tmp_path / "synthetic"
    result = runner.invoke(app, ["generate", "--run", str(run), "--masks", str(phantom / "masks"),
                                 "--out", str(out), "--n", "2"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "images").iterdir())) == 2 and (out / "contact_sheet.png").is_file()

    result = runner.invoke(app, ["generate", "--run", str(run), "--masks", str(tmp_path / "missing"),
                                 "--out", str(tmp_path / "other")])
    assert result.exit_code == 2 and "mask folder not found" in result.output


def test_a_composite_run_exports_composites_of_its_own_training_pairs(phantom: Path, tmp_path: Path) -> None:
    run = _tiny_run(phantom, tmp_path / "composite", "separate", generator="composite")
    written = generate_pairs(run, None, tmp_path / "synthetic", n=4, seed=0)
    assert len(written) == 4 and (tmp_path / "synthetic" / "contact_sheet.png").is_file()
    assert any(read_mask(tmp_path / "synthetic" / "masks" / path.name).any() for path in written)
    with pytest.raises(ValueError, match="pastes the run's own training pairs; leave out --masks"):
        generate_pairs(run, phantom / "masks", tmp_path / "other", n=2)
    assert not (tmp_path / "other").exists()  # refused before anything is written


def test_a_two_channel_run_exports_nnunet_raw_data_that_reads_back(phantom: Path, tmp_path: Path) -> None:
    data = tmp_path / "two_channels"
    for case in index_cases(phantom).cases.values():
        image = np.asarray(Image.open(case.image_path).convert("L"))
        for channel, pixels in enumerate((image, 255 - image)):
            (data / "imagesTr").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(data / "imagesTr" / f"{case.case_id}_{channel:04d}.png")
        write_mask_png(data / "labelsTr" / f"{case.case_id}.png", read_mask(case.mask_path))
    (data / "dataset.json").write_text(json.dumps({"channel_names": {"0": "a", "1": "b"}, "file_ending": ".png",
                                                   "labels": {"background": 0, "spot": 1}}))
    run = _tiny_run(data, tmp_path / "run", "separate")
    out = tmp_path / "synthetic"
    written = generate_pairs(run, None, out, n=3, seed=0)
    assert [path.name for path in written] == [f"syn_{i:04d}_0000.png" for i in range(3)]
    assert sorted(path.name for path in (out / "imagesTr").iterdir()) == [
        f"syn_{i:04d}_{k:04d}.png" for i in range(3) for k in range(2)]
    index = index_cases(out)
    assert index.layout == "nnunet" and index.ids == [f"syn_{i:04d}" for i in range(3)]
    labels = np.asarray(Image.open(out / "labelsTr" / "syn_0000.png"))
    assert set(np.unique(labels).tolist()) <= {0, 1}  # class indices, as nnU-Net wants them
    assert (out / "contact_sheet.png").is_file()


def test_a_3d_run_generates_volumes_in_its_voxel_grid_and_a_sheet_of_their_slices(
    tmp_path_factory: pytest.TempPathFactory, tiny_config, tmp_path: Path,
) -> None:
    import nibabel as nib

    from genseg.data import make_volume_phantom, volume_geometry

    volumes = make_volume_phantom(tmp_path_factory.mktemp("volumes") / "Task04_Tiny", n_cases=5)
    run = train(tiny_config(volumes, "separate", budget=3, data={"dims": 3}), tmp_path / "run", progress=False).run_dir
    written = generate_pairs(run, None, tmp_path / "syn", n=3, seed=0)
    assert [path.name for path in written] == ["syn_0000.nii.gz", "syn_0001.nii.gz", "syn_0002.nii.gz"]
    image, mask = nib.load(written[0]), nib.load(tmp_path / "syn" / "masks" / "syn_0000.nii.gz")
    assert image.shape == mask.shape == (32, 32, 32)  # the run's patch
    source_affine = volume_geometry(next(iter(index_cases(volumes).cases.values())).image_path)[1]
    assert np.allclose(image.affine[:3, :3], source_affine[:3, :3]) and np.allclose(image.affine[:3, 3], 0)
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1, 2}
    sheet = Image.open(tmp_path / "syn" / "contact_sheet.png")
    assert sheet.width > 9 * 128 and sheet.height > 3 * 128  # mask | synthetic | real in three planes, 3 rows
    with pytest.raises(ValueError, match="leave out --masks"):
        generate_pairs(run, volumes, tmp_path / "again", n=1)
