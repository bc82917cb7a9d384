"""Evaluation and prediction of finished runs, 2D pictures and 3D volumes."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from genseg.config import RunConfig
from genseg.data import (
    DataError,
    Sample,
    index_cases,
    load_samples,
    make_phantom,
    make_volume_phantom,
    read_split,
    to_tensors,
)
from genseg.data.tensors import volume_offsets
from genseg.evaluation import (
    PREDICTIONS_MANIFEST,
    evaluate,
    load_segmenter,
    overlay_view,
    predict,
    volume_probabilities,
    write_overlay,
)
from genseg.run_data import read_run_plan
from genseg.runs import RunPaths
from genseg.training import train


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def picture_run(tiny_phantom: Path, tiny_config: Callable[..., RunConfig],
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluation") / "run"
    train(tiny_config(tiny_phantom, "augment", iterations=4), out, progress=False)
    return out


@pytest.fixture(scope="module")
def picture_summaries(picture_run: Path) -> dict[str, dict]:
    return evaluate(picture_run, split="test")


def _binary_dice(prediction_png: Path, mask_png: Path) -> float:
    """Dice of two 0/255 mask files, computed here without genseg (1 when both are empty)."""
    with Image.open(prediction_png) as prediction, Image.open(mask_png) as mask:
        predicted, target = np.asarray(prediction) > 0, np.asarray(mask) > 0
    total = predicted.sum() + target.sum()
    return 1.0 if total == 0 else float(2 * (predicted & target).sum() / total)


def test_evaluate_writes_one_row_per_test_case(
    picture_run: Path, picture_summaries: dict[str, dict], tiny_phantom: Path, tmp_path: Path
) -> None:
    test_ids = read_split(picture_run / "split.json").test
    assert set(picture_summaries) == {"best", "final", "averaged"}
    for checkpoint, summary in picture_summaries.items():
        folder = picture_run / "eval" / "test" / checkpoint
        rows = _rows(folder / "cases.csv")
        assert [row["case"] for row in rows] == test_ids
        predictions = tmp_path / checkpoint
        predict(picture_run, tiny_phantom / "images", predictions, checkpoint=checkpoint)
        for row in rows:  # each case's Dice is that of the mask genseg predict writes for it
            expected = _binary_dice(predictions / f"{row['case']}.png", tiny_phantom / "masks" / f"{row['case']}.png")
            assert float(row["dice"]) == pytest.approx(expected, abs=1e-6)
        written = json.loads((folder / "summary.json").read_text())
        assert written["n_cases"] == summary["n_cases"] == len(test_ids) == 4
        assert written["dice_mean"] == pytest.approx(np.mean([float(row["dice"]) for row in rows]))
        assert written["checkpoint"] == checkpoint and written["split"] == "test"


def test_evaluate_draws_overlays_of_the_worst_cases_with_a_caption(picture_run: Path) -> None:
    evaluate(picture_run, split="test", checkpoints=("best",), overlays=2)
    rows = sorted(_rows(picture_run / "eval" / "test" / "best" / "cases.csv"), key=lambda row: float(row["dice"]))
    overlays = sorted((picture_run / "eval" / "test" / "best" / "overlays").glob("*.png"))
    assert sorted(path.stem for path in overlays) == sorted(row["case"] for row in rows[:2])
    with Image.open(overlays[0]) as overlay:  # 32 px images enlarged 8x, plus the caption bar
        assert overlay.mode == "RGB" and overlay.size == (256, 256 + 16)
        red, green = np.asarray(overlay)[256:, :, 0].astype(int), np.asarray(overlay)[256:, :, 1].astype(int)
        assert (green - red > 100).any() and (red - green > 100).any()  # the legend's two colours


def test_only_the_worst_cases_views_are_held_while_scoring() -> None:
    from genseg.evaluation import OverlayView, _Scores

    score = _Scores(RunPaths(Path("run")), "best", None, overlays=2)  # type: ignore[arg-type]
    blank = np.zeros((2, 2), dtype=np.int64)
    for case, dice in (("a", 0.5), ("b", 0.9), ("c", 0.2), ("d", 0.5), ("e", 0.95)):
        score.rows.append({"case": case, "dice": dice})
        score.keep_view(case, OverlayView(np.zeros((2, 2, 3), dtype=np.uint8), blank, blank))
        assert len(score.views) <= 2
    worst = [row["case"] for row in sorted(score.rows, key=lambda row: row["dice"])[:2]]
    assert sorted(score.views) == sorted(worst) == ["a", "c"]  # a before d: the earlier of equals
    assert score.views["a"].reference.dtype == np.uint8


def test_an_overlay_of_a_large_photograph_is_a_subsampled_preview() -> None:
    from genseg.evaluation import OVERLAY_MAX_SIDE, OverlayView

    labels = np.zeros((2100, 1500), dtype=np.int64)
    labels[1000:1100, 700:800] = 1
    view = OverlayView(np.zeros((2100, 1500, 3), dtype=np.uint8), labels, labels)
    assert view.rgb.shape == (700, 500, 3) and view.reference.shape == (700, 500)  # every third pixel
    assert max(view.rgb.shape) <= OVERLAY_MAX_SIDE
    assert view.reference.sum() == 33**2  # rows and columns 1002, 1005, ..., 1098


def test_evaluate_other_splits(picture_run: Path) -> None:
    summaries = evaluate(picture_run, split="val", checkpoints=("final",), overlays=0)
    assert list(summaries) == ["final"] and summaries["final"]["n_cases"] == 1
    assert not (picture_run / "eval" / "val" / "final" / "overlays").exists()
    with pytest.raises(ValueError, match="split"):
        evaluate(picture_run, split="holdout")


def test_another_folder_is_scored_whole_under_its_own_name(picture_run: Path, tmp_path: Path) -> None:
    other = make_phantom(tmp_path / "other-clinic", n_cases=3, size=32, seed=5)
    summaries = evaluate(picture_run, data=other, checkpoints=("best",), overlays=0)
    assert summaries["best"]["split"] == "ood-other-clinic" and summaries["best"]["n_cases"] == 3
    assert (picture_run / "eval" / "ood-other-clinic" / "best" / "cases.csv").is_file()


def test_dev_split_is_the_pool_outside_the_budget(picture_run: Path) -> None:
    split = read_split(picture_run / "split.json")
    evaluate(picture_run, split="dev", checkpoints=("final",), overlays=0)
    dev = [row["case"] for row in _rows(picture_run / "eval" / "dev" / "final" / "cases.csv")]
    assert dev == split.pool[0][4:] and len(dev) == 4  # 8 pool cases, budget 4
    assert not set(dev) & set(split.test)


def test_predict_writes_masks_at_each_input_size(picture_run: Path, tiny_phantom: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    sizes = {"wide": (48, 40), "tall": (36, 64), "same": (32, 32)}  # PIL sizes: (width, height)
    for stem, size in sizes.items():
        with Image.open(tiny_phantom / "images" / "case_000.png") as image:
            image.resize(size).save(inputs / f"{stem}.png")

    written = predict(picture_run, inputs, tmp_path / "masks")

    assert sorted(path.name for path in written) == sorted(f"{stem}.png" for stem in sizes)
    for path in written:
        with Image.open(path) as mask:
            assert mask.size == sizes[path.stem]
            assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}


def test_tta_is_scored_beside_the_plain_inference_and_recorded(picture_run: Path, tiny_phantom: Path,
                                                               tmp_path: Path) -> None:
    plain = evaluate(picture_run, checkpoints=("final",), overlays=0)["final"]
    mirrored = evaluate(picture_run, checkpoints=("final",), overlays=0, tta=True)["final"]
    assert (picture_run / "eval" / "test" / "final" / "cases.csv").is_file()  # left as it was
    assert mirrored["tta"] and not plain["tta"]
    assert json.loads((picture_run / "eval" / "test" / "final-tta" / "summary.json").read_text()) == mirrored
    assert mirrored["n_cases"] == plain["n_cases"]
    written = predict(picture_run, tiny_phantom / "images", tmp_path / "masks", checkpoint="final", tta=True)
    assert len(written) == 12 and json.loads((tmp_path / "masks" / PREDICTIONS_MANIFEST).read_text())["tta"]


def test_predict_never_writes_into_its_input_or_the_data_or_over_files(picture_run: Path, tiny_phantom: Path,
                                                                        tmp_path: Path) -> None:
    """The mask folder of a data set as --out replaced its reference masks without a word."""
    data = tmp_path / "x"
    shutil.copytree(tiny_phantom, data)
    before = {path.name: path.read_bytes() for path in (data / "masks").iterdir()}
    with pytest.raises(DataError, match="exist already .* pass --overwrite"):
        predict(picture_run, data / "images", data / "masks")  # a folder that is not the run's data
    with pytest.raises(DataError, match="input folder or inside it"):
        predict(picture_run, data / "images", data / "images")
    with pytest.raises(DataError, match="inside the run's data folder"):
        predict(picture_run, data / "images", tiny_phantom / "predictions")
    assert {path.name: path.read_bytes() for path in (data / "masks").iterdir()} == before
    assert not (tiny_phantom / "predictions").exists()

    out = tmp_path / "predictions"
    written = predict(picture_run, data / "images", out)
    manifest = json.loads((out / PREDICTIONS_MANIFEST).read_text())
    assert manifest["files"] == [path.name for path in written] and manifest["checkpoint"] == "averaged"
    with pytest.raises(DataError, match="--overwrite"):
        predict(picture_run, data / "images", out)
    assert predict(picture_run, data / "images", out, overwrite=True) == written


def test_predict_takes_a_single_file(picture_run: Path, tiny_phantom: Path, tmp_path: Path) -> None:
    (written,) = predict(picture_run, tiny_phantom / "images" / "case_001.png", tmp_path / "masks")
    assert written == tmp_path / "masks" / "case_001.png" and written.is_file()


def test_predict_checks_every_input_before_writing(picture_run: Path, tiny_phantom: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for stem in ("a_gray", "b_gray"):
        shutil.copyfile(tiny_phantom / "images" / "case_000.png", inputs / f"{stem}.png")
    with Image.open(tiny_phantom / "images" / "case_000.png") as image:
        image.convert("RGB").save(inputs / "c_colour.png")  # sorted last: found only after two good ones
    with pytest.raises(DataError, match=r"c_colour.png: an RGB image, but the model was trained on grayscale"):
        predict(picture_run, inputs, tmp_path / "masks")
    assert not (tmp_path / "masks").exists()


# --- 3D: an MSD-style folder of small NIfTI volumes with two foreground classes ---

VOLUME_SHAPE = (12, 16, 20)
AFFINE = np.array([[0.0, -0.8, 0.0, 12.0], [1.5, 0.0, 0.0, -4.0], [0.0, 0.0, 2.0, 7.5], [0.0, 0.0, 0.0, 1.0]])


@pytest.fixture(scope="module", params=[2, 3], ids=["slices", "volumes"])
def volume_run(tiny_config: Callable[..., RunConfig], tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Path:
    """A run trained on the volumes' slices (dims 2) or on whole volumes (dims 3)."""
    data = make_volume_phantom(tmp_path_factory.mktemp("volumes") / "Task04_Tiny", shape=VOLUME_SHAPE, affine=AFFINE)
    config = tiny_config(data, "augment", budget=2, iterations=4,
                         data={"axis": 0, "test_fraction": 0.5, "dims": request.param})
    out = data.parent / "run"
    train(config, out, progress=False)
    return out


@pytest.mark.parametrize("volume_run", [3], ids=["volumes"], indirect=True)
def test_a_volume_that_fits_the_patch_is_one_window_the_whole_volume_prediction(volume_run: Path) -> None:
    segmenter = load_segmenter(volume_run, "best")
    assert segmenter.size == (32, 32, 32)  # every budget volume (12 x 16 x 20) fits, rounded up to 32
    index = index_cases(volume_run.parent / "Task04_Tiny")
    sample = load_samples(index, ["vol_000"], axis=None)[0]
    padded = to_tensors([sample], segmenter.size, 3).images  # centred in the patch, as in training
    start = volume_offsets(VOLUME_SHAPE, segmenter.size)
    with torch.no_grad():
        whole = torch.softmax(segmenter.model(padded), dim=1)[0]
    expected = whole[(slice(None), *(slice(s, s + side) for s, side in zip(start, VOLUME_SHAPE)))]
    assert torch.allclose(volume_probabilities(segmenter, sample), expected, atol=1e-5)


@pytest.mark.parametrize("volume_run", [3], ids=["volumes"], indirect=True)
def test_a_volume_larger_than_the_patch_is_covered_by_windows(volume_run: Path) -> None:
    segmenter = load_segmenter(volume_run, "best")
    large = Sample("large", np.random.default_rng(0).random((1, 40, 36, 50), dtype=np.float32))
    probabilities = volume_probabilities(segmenter, large)
    assert probabilities.shape == (3, 40, 36, 50)
    assert torch.allclose(probabilities.sum(0), torch.ones(40, 36, 50), atol=1e-4)


def test_evaluate_volumes_scores_each_class_one_row_per_volume(volume_run: Path) -> None:
    summaries = evaluate(volume_run, split="test", checkpoints=("best",))
    test_ids = read_split(volume_run / "split.json").test
    rows = _rows(volume_run / "eval" / "test" / "best" / "cases.csv")
    assert len(test_ids) == 2 and [row["case"] for row in rows] == test_ids
    assert {"dice_1", "dice_2", "dice_fg"} <= set(rows[0])
    assert summaries["best"]["n_cases"] == 2
    assert {"dice_1_mean", "dice_2_mean"} <= set(summaries["best"])
    assert summaries["best"]["hd95_unit"] == "mm"  # the volumes' spacing is known


@pytest.mark.parametrize("volume_run", [3], ids=["volumes"], indirect=True)
def test_the_report_of_a_3d_run_gives_its_patch_hd95_in_mm_and_its_worst_overlay(volume_run: Path) -> None:
    from genseg.report import run_report

    evaluate(volume_run, split="test", checkpoints=("best",), overlays=1)
    page = run_report(volume_run).read_text()
    assert "<td>3D</td><td>volumes padded to 32x32x32 voxels of " in page and "image size" not in page
    assert "HD95 (mm)" in page and "HD95 (px)" not in page and "millimetres of the original volumes" in page
    assert page.count("<figure>") == 1  # the worst volume's three planes (test_a_volume_overlay_shows_...)


def test_predict_volumes_keeps_shape_and_affine(volume_run: Path, tmp_path: Path) -> None:
    images = volume_run.parent / "Task04_Tiny" / "imagesTr"

    written = predict(volume_run, images, tmp_path / "predictions")

    assert sorted(path.name for path in written) == sorted(path.name for path in images.iterdir())
    for path in written:
        volume = nib.load(path)
        assert volume.shape == VOLUME_SHAPE
        assert np.allclose(volume.affine, AFFINE)
        assert set(np.unique(np.asarray(volume.dataobj)).tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("volume_run", [3], ids=["volumes"], indirect=True)
def test_predict_writes_metaimage_volumes_as_metaimage_in_their_geometry(volume_run: Path, tmp_path: Path) -> None:
    import SimpleITK as sitk

    nifti = sorted((volume_run.parent / "Task04_Tiny" / "imagesTr").iterdir())[:2]
    metaimage = tmp_path / "mha"
    metaimage.mkdir()
    for path in nifti:  # converted by ITK itself, geometry included
        sitk.WriteImage(sitk.ReadImage(str(path)), str(metaimage / path.name.replace(".nii.gz", ".mha")))

    from_nifti = predict(volume_run, nifti[0].parent, tmp_path / "from-nifti")
    from_metaimage = predict(volume_run, metaimage, tmp_path / "from-mha")

    assert [path.name for path in from_metaimage] == ["vol_000.mha", "vol_001.mha"]
    for ours, reference, source in zip(from_metaimage, from_nifti, sorted(metaimage.iterdir())):
        written, image = sitk.ReadImage(str(ours)), sitk.ReadImage(str(source))
        assert written.GetSize() == image.GetSize()
        np.testing.assert_allclose(written.GetOrigin(), image.GetOrigin(), atol=1e-9)
        np.testing.assert_allclose(written.GetSpacing(), image.GetSpacing(), atol=1e-9)
        np.testing.assert_allclose(written.GetDirection(), image.GetDirection(), atol=1e-9)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(written),
                                      sitk.GetArrayFromImage(sitk.ReadImage(str(reference))))


def test_an_evaluation_killed_midway_leaves_the_earlier_results_whole(picture_run: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate(picture_run, checkpoints=("best",), overlays=1)
    folder = picture_run / "eval" / "test" / "best"
    before = {path.name: path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C between the overlays and the table

    monkeypatch.setattr("genseg.evaluation.write_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        evaluate(picture_run, checkpoints=("best",), overlays=1)
    assert {path.name: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    assert sorted(path.name for path in folder.parent.iterdir()) == sorted(
        path.name for path in folder.parent.iterdir() if not path.name.startswith("."))  # nothing partial left


def _run_on_recoded_masks(phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path,
                          recode: Callable[[np.ndarray], np.ndarray]) -> tuple[Path, Path]:
    """(data, run): the phantom with each mask's foreground stored as ``recode`` gives, and a tiny run on it."""
    data = tmp_path / "data"
    shutil.copytree(phantom, data)
    for path in (data / "masks").glob("*.png"):
        with Image.open(path) as mask:
            foreground = np.asarray(mask) > 0
        Image.fromarray(recode(foreground).astype(np.uint8)).save(path)
    run = tmp_path / "run"
    train(tiny_config(data, "augment", iterations=4), run, progress=False)
    return data, run


def test_a_run_on_labels_0_and_7_scores_one_class_and_predicts_7(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    """Labels {0, 7} built an 8-class model whose six empty classes flattered its mean Dice."""
    data, run = _run_on_recoded_masks(tiny_phantom, tiny_config, tmp_path, lambda fg: np.where(fg, 7, 0))

    assert load_segmenter(run).labels.values == (0, 7)
    evaluate(run, split="test", checkpoints=("final",))
    (row, *_) = _rows(run / "eval" / "test" / "final" / "cases.csv")
    assert "dice_7" in row and not any(key.startswith("dice_") and key != "dice_7" for key in row)
    written = predict(run, data / "images", tmp_path / "predicted", checkpoint="final")
    stored = np.stack([np.asarray(Image.open(path)) for path in written])
    assert set(np.unique(stored).tolist()) <= {0, 7} and (stored == 7).any()


def test_a_run_on_colour_coded_masks_scores_and_predicts_in_their_colours(
    tiny_phantom: Path, tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    data, run = _run_on_recoded_masks(tiny_phantom, tiny_config, tmp_path,
                                      lambda fg: np.where(fg[..., None], [0, 200, 0], [0, 0, 0]))

    evaluate(run, split="test", checkpoints=("final",))
    (row, *_) = _rows(run / "eval" / "test" / "final" / "cases.csv")
    assert "dice_00c800" in row
    written = predict(run, data / "images", tmp_path / "predicted", checkpoint="final")
    colours = np.concatenate([np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3) for path in written])
    assert all(Image.open(path).mode == "RGB" for path in written)
    found = {tuple(colour) for colour in np.unique(colours, axis=0).tolist()}
    assert found <= {(0, 0, 0), (0, 200, 0)} and (0, 200, 0) in found


def test_a_volume_overlay_shows_its_three_planes_through_the_most_foreground() -> None:
    target = np.zeros(VOLUME_SHAPE, dtype=np.int64)
    target[7, 3:5, 4:9] = 1  # the most foreground: plane 7 of axis 0, 3 of axis 1, 4 of axis 2
    target[2, 10, 15] = 1
    image = np.zeros((1, *VOLUME_SHAPE), dtype=np.float32)
    image[0, 7] = 1.0
    whole = overlay_view([Sample("v", image, target)], target, target, axis=0)
    slices = [Sample("v", image[:, i], target[i], slice_index=i) for i in range(VOLUME_SHAPE[0])]
    sliced = overlay_view(slices, target, target, axis=0)
    gap = 2
    assert whole.reference.shape == (16, 20 + gap + 20 + gap + 16 + gap)
    for view in (whole, sliced):
        assert np.array_equal(view.rgb, whole.rgb) and np.array_equal(view.reference, whole.reference)
    assert np.array_equal(whole.reference[:16, :20], target[7])  # axis 0's plane first
    assert np.all(whole.rgb[:16, :20] == 255) and np.array_equal(whole.reference[:12, 22:42], target[:, 3])


def test_an_overlay_of_a_two_modality_image_shows_the_first_in_gray(tmp_path: Path) -> None:
    image = np.zeros((2, 8, 8), dtype=np.float32)
    image[0, :, :4], image[1] = 1.0, 0.5  # channel 0 white on the left, channel 1 uniform
    target = np.zeros((8, 8), dtype=np.int64)
    target[2:6, 2:6] = 1
    view = overlay_view([Sample("case", image, target)], target, target, axis=0)
    assert view.rgb.shape == (8, 8, 3)
    assert view.rgb[0, 0].tolist() == [255, 255, 255] and view.rgb[0, 7].tolist() == [0, 0, 0]
    write_overlay(view, 1.0, tmp_path / "case.png")
    assert Image.open(tmp_path / "case.png").mode == "RGB"


@pytest.mark.parametrize("kind", ["thick slices", "2D NIfTI"])
def test_volumes_are_trained_on_the_planned_axis_and_predicted_in_their_own_shape(
    kind: str, tiny_config: Callable[..., RunConfig], slice_phantom: Callable[..., Path], tmp_path: Path
) -> None:
    """Volumes trained in 2D were sliced along axis 0 whatever their spacing (across 5 mm slices), and a
    2D NIfTI image was refused as "not a 3D volume". Both now train on their acquired slices (axis 2)."""
    make = slice_phantom if kind == "2D NIfTI" else make_volume_phantom
    data = make(tmp_path / "Task04_Planar", n_cases=4, affine=np.diag([1.0, 1.0, 5.0, 1.0]))
    config = tiny_config(data, "augment", budget=3, iterations=2, data={"test_fraction": 0.25})
    out = tmp_path / "run"
    train(config, out, progress=False)

    assert read_run_plan(RunPaths(out)).axis == 2 and load_segmenter(out, "best").config.data.axis == 2
    written = predict(out, data / "imagesTr", tmp_path / "predictions")
    for path in written:
        source = nib.load(data / "imagesTr" / path.name)
        assert nib.load(path).shape[:2] == source.shape[:2] and np.allclose(nib.load(path).affine, source.affine)
    assert evaluate(out, split="test", checkpoints=("best",))["best"]["n_cases"] == 1


def test_a_3d_run_trains_at_the_budgets_median_spacing_and_predicts_in_each_inputs_geometry(
    tiny_config: Callable[..., RunConfig], tmp_path: Path
) -> None:
    data = make_volume_phantom(tmp_path / "Task04_Mixed", n_cases=4)
    coarse = np.diag([2.0, 1.0, 1.0, 1.0])  # two cases with voxels twice as long along axis 0
    for case in ("vol_000", "vol_001"):
        for folder in ("imagesTr", "labelsTr"):
            path = data / folder / f"{case}.nii.gz"
            volume = nib.load(path)
            nib.save(nib.Nifti1Image(np.asarray(volume.dataobj), coarse), path)
    config = tiny_config(data, "augment", budget=3, iterations=2, data={"test_fraction": 0.25, "dims": 3})
    out = tmp_path / "run"
    train(config, out, progress=False)

    plan = read_run_plan(RunPaths(out))
    budget = [*plan.train_ids, *plan.val_ids]
    sides = [2.0 if case in ("vol_000", "vol_001") else 1.0 for case in budget]
    assert plan.spacing == (float(np.median(sides)), 1.0, 1.0) and "data.spacing" in plan.decided
    assert load_segmenter(out, "best").config.data.spacing == plan.spacing
    longest = max(round(12 * side / plan.spacing[0]) for side in sides)  # the patch holds every resampled volume
    assert plan.patch[0] >= longest

    written = predict(out, data / "imagesTr", tmp_path / "predictions")
    for path in written:  # back in the input's own grid, whichever spacing it had
        source = nib.load(data / "imagesTr" / path.name)
        assert nib.load(path).shape == source.shape and np.allclose(nib.load(path).affine, source.affine)
    summary = evaluate(out, split="test", checkpoints=("best",))["best"]
    assert summary["n_cases"] == 1 and summary["hd95_unit"] == "mm"
