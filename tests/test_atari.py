"""Atari positioning datasets: labels that agree with the picture, the collection's design, the protocol."""

import numpy as np
import pytest

pytest.importorskip("ale_py")

from skperceptual.datasets import _atari, load_atari, make_atari  # noqa: E402
from skperceptual.datasets._atari import ATARI_GAMES  # noqa: E402


def _native_frames(game, n_rollouts=4, n_steps=150):
    """Native 210x160 frames and RAM of a few rollouts, recorded while make_atari's own rollout code runs."""
    import gymnasium

    class Recorder(gymnasium.Wrapper):
        def step(self, action):
            result = super().step(action)
            frames.append(result[0])
            return result

    frames = []
    env = Recorder(_atari._import_ale().make(ATARI_GAMES[game].env_id))
    rams, rollouts = [], []
    for r in range(n_rollouts):
        _, ram = _atari._rollout(env, (100 + r, r), n_steps, 64)
        rams.append(ram)
        rollouts += [r] * n_steps
    env.close()
    return np.array(frames), np.concatenate(rams), np.array(rollouts)


def _found_by_colour(frames, spec, max_pixels=60):
    """The object's centre (column, row) where its colour shows in its rows, NaN where it does not (or is ambiguous)."""
    top, bottom = spec.rows
    mask = np.all(frames[:, top:bottom] == spec.colour, axis=-1)
    centres = np.full((len(frames), 2), np.nan)
    for i, m in enumerate(mask):
        if 0 < m.sum() <= max_pixels:
            rows, cols = np.nonzero(m)
            centres[i] = cols.mean(), rows.mean() + top
    return centres


@pytest.mark.parametrize("game", sorted(ATARI_GAMES))
def test_labels_agree_with_the_rendered_frames(game):
    spec = ATARI_GAMES[game]
    frames, rams, rollouts = _native_frames(game)
    labels = _atari.ram_to_pixels(rams, game)
    visible = _atari._visible({"y": labels, "ram": rams}, game)
    found = _found_by_colour(frames, spec)
    # The colour finder's position, mapped to the 64x64 frame as the resize maps it.
    scale = 64 / np.array([160, 210])
    seen = (found + 0.5) * scale - 0.5
    both = visible & ~np.isnan(found[:, 0])
    assert both.sum() >= 100 and len(np.unique(rollouts[both])) >= 3
    distance = np.linalg.norm(labels[both] - seen[both], axis=1)
    assert np.median(distance) <= 1.0, np.percentile(distance, [50, 90])
    # Frames labelled visible, with the label in the rows where the colour is
    # the object's alone, show the object; frames labelled absent lack it.
    native_row = (labels[:, 1] + 0.5) * 210 / 64 - 0.5
    in_rows = visible & (native_row >= spec.rows[0]) & (native_row < spec.rows[1])
    assert in_rows.sum() >= 100 and (~np.isnan(found[in_rows, 0])).mean() >= 0.95
    absent = ~visible
    if absent.any():
        assert np.isnan(found[absent, 0]).mean() > 0.9


def test_make_atari_follows_the_collection_design():
    data = make_atari("pong", n_rollouts=6, n_steps=60, random_state=0, n_jobs=1)
    assert data.autoencoder.X.shape == (3 * 60, 3, 64, 64) and data.autoencoder.y is None
    assert set(np.unique(data.autoencoder.rollout)) == {0, 1, 2}
    for part in ("predictor", "test"):
        assert data[part].y.dtype == np.float32 and len(data[part].y) == len(data[part].X) == len(data[part].ram)
        assert ((data[part].y >= -0.5) & (data[part].y < 63.5)).all()
    # Whole rollouts per part, and frames without the ball dropped.
    assert not set(data.predictor.rollout) & set(data.test.rollout)
    assert len(data.predictor.X) + len(data.test.X) < 3 * 60 and data.metadata["n_absent"] > 0
    assert data.game == "pong" and data.task == "positioning"
    # Per-rollout seeds: the same bytes with two processes.
    again = make_atari("pong", n_rollouts=6, n_steps=60, random_state=0, n_jobs=2)
    for part in ("autoencoder", "predictor", "test"):
        np.testing.assert_array_equal(again[part].X, data[part].X)


def test_load_atari_caches_and_memory_maps(tmp_path):
    first = load_atari("breakout", data_home=tmp_path, n_rollouts=4, n_steps=40)
    files = sorted(p.name for p in (tmp_path / "atari").iterdir())
    assert len(files) == 1 and first.filename.endswith(files[0])
    mapped = load_atari("breakout", data_home=tmp_path, n_rollouts=4, n_steps=40, mmap_mode="r",
                        download_if_missing=False)
    assert isinstance(mapped.test.X, np.memmap)
    np.testing.assert_array_equal(mapped.test.X, first.test.X)
    np.testing.assert_array_equal(mapped.test.y, first.test.y)


def test_cli_data_atari(tmp_path, capsys):
    from skperceptual.__main__ import main

    assert main(["data", "atari", "breakout", "--rollouts", "4", "--steps", "40", "--data-home", str(tmp_path),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    data = load_atari("breakout", data_home=tmp_path, n_rollouts=4, n_steps=40, download_if_missing=False)
    assert f"Atari breakout collection: {data.filename}" in out
    for part in ("autoencoder", "predictor", "test"):
        assert f"{part:<12} {len(data[part].X):>8} {len(set(data[part].rollout.tolist())):>9}" in out
    assert f"without the ball: dropped {data.metadata['n_absent']} of 80 altered frames" in out


def test_cli_help_names_every_game(capsys):
    """The CLI names the games without importing the datasets, so its help must follow ATARI_GAMES by hand."""
    from skperceptual.__main__ import main

    for command in (["experiment", "--help"], ["data", "atari", "--help"]):
        with pytest.raises(SystemExit):
            main(command)
        text = " ".join(capsys.readouterr().out.split())
        for game in ATARI_GAMES:
            assert game in text, (command, game)


@pytest.mark.slow
def test_protocol_runs_on_an_atari_game(tmp_path):
    from skperceptual.__main__ import main as cli_main

    assert cli_main(["experiment", "--dataset", "breakout", "--profile", "smoke", "--out", str(tmp_path / "run"),
                     "--quiet", "--set", "ae.perceptual_weights=none"]) == 0
    text = (tmp_path / "run" / "tables.md").read_text()
    # Tables of this project's own, with the paper's columns empty: none of LunarLander's numbers.
    assert text.startswith("# breakout:") and "| — |" in text
    assert "Table II" not in text and "13.22" not in text


def test_every_game_gives_a_protocol_dataset():
    """Each game at the smoke profile's sizes has frames in every part, and the runner names the run after it."""
    from skperceptual.protocol import load_profile
    from skperceptual.protocol._runner import prepare_data

    config = load_profile("smoke")
    for game in ATARI_GAMES:
        data = prepare_data(make_atari(game, **config["data"]["loader"][game], random_state=0), config)
        assert data.dataset == game and data.task == "positioning"
        assert min(len(data[part].X) for part in ("autoencoder", "predictor", "test")) > 0
