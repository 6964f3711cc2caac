"""Images that stay on disk: a uint8 memory map is read batch by batch, never copied whole.

Peak memory and throughput on a large memory map are measured by
``benchmarks/memmap.py``; here the estimator must hand the memory map itself
(not a copy) to the batches, and give the results it gives for the same
images in RAM.
"""

import numpy as np
import pytest

from skperceptual import PerceptualAETransformer
from skperceptual.datasets import load_lunarlander
from skperceptual.training import data as training_data


@pytest.fixture
def images_on_disk(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.uint8, shape=(40, 3, 64, 64))
    X[:] = np.random.default_rng(0).integers(0, 256, X.shape, dtype=np.uint8)
    X.flush()
    return np.load(tmp_path / "images.npy", mmap_mode="r")


@pytest.fixture
def batch_sources(monkeypatch):
    """The arrays that every ImageDataset built from now on gathers its batches from."""
    sources = []
    init = training_data.ImageDataset.__init__

    def spy(self, images, indices=None):
        sources.append(images.numpy())
        init(self, images, indices)

    monkeypatch.setattr(training_data.ImageDataset, "__init__", spy)
    return sources


def test_fit_transform_and_decoder_read_the_memory_map_itself(images_on_disk, batch_sources):
    X = images_on_disk
    ae = PerceptualAETransformer(loss="pixel", z_dim=4, max_epochs=2, batch_size=16, random_state=0)
    Z = ae.fit(X).transform(X)
    ae.fit_decoder(X, max_epochs=1)
    ae.score(X)
    assert len(batch_sources) >= 4
    assert all(np.shares_memory(source, X) for source in batch_sources)

    in_ram = PerceptualAETransformer(loss="pixel", z_dim=4, max_epochs=2, batch_size=16, random_state=0)
    np.testing.assert_array_equal(in_ram.fit(np.array(X)).transform(np.array(X)), Z)


def test_inverse_transform_reads_embeddings_from_a_memory_map(images_on_disk, tmp_path):
    ae = PerceptualAETransformer(loss="pixel", z_dim=4, max_epochs=1, batch_size=16, random_state=0)
    Z = ae.fit(images_on_disk).transform(images_on_disk)
    np.save(tmp_path / "z.npy", Z)
    on_disk = np.load(tmp_path / "z.npy", mmap_mode="r")
    np.testing.assert_array_equal(ae.inverse_transform(on_disk), ae.inverse_transform(Z))


def test_load_lunarlander_memory_maps_its_images(tmp_path):
    pytest.importorskip("gymnasium")
    kwargs = dict(data_home=tmp_path, n_rollouts=4, n_steps=25)
    in_ram = load_lunarlander(**kwargs)
    mapped = load_lunarlander(**kwargs, mmap_mode="r")
    for part in ("autoencoder", "predictor", "test"):
        assert isinstance(mapped[part].X, np.memmap) and mapped[part].X.mode == "r"
        np.testing.assert_array_equal(mapped[part].X, in_ram[part].X)
        assert not isinstance(mapped[part].y, np.memmap)
    # The images' uncompressed copies sit beside the cache; a second call reuses them.
    copies = sorted(p.name for p in (tmp_path / "lunarlander").glob("*.npy"))
    assert len(copies) == 3
    again = load_lunarlander(**kwargs, mmap_mode="r")
    assert sorted(p.name for p in (tmp_path / "lunarlander").glob("*.npy")) == copies
    np.testing.assert_array_equal(again.test.X, in_ram.test.X)


def test_load_lunarlander_rejects_an_unknown_mmap_mode(tmp_path):
    with pytest.raises(ValueError, match="mmap_mode='rw' is not supported: pass None"):
        load_lunarlander(data_home=tmp_path, n_rollouts=4, n_steps=25, mmap_mode="rw")
    assert not (tmp_path / "lunarlander").exists()
