"""retain_freed_memory: glibc reuses freed blocks while a fit runs."""

import ctypes

import pytest
import skorch
import torch

from skperceptual import PerceptualAETransformer
from skperceptual.training import allocator as _allocator
from skperceptual.training.allocator import retain_freed_memory

pytestmark = pytest.mark.skipif(
    _allocator._glibc() is None or not _allocator._enabled(),
    reason="a setting for glibc's own, untuned malloc",
)

#: Above glibc's largest mmap threshold (32 MB): its own mmap by default.
_NBYTES = 64 * 2**20
#: Larger than any free block that earlier fits can leave on the heap, so
#: it shows whether glibc maps new blocks again (it reuses free heap
#: blocks that fit whatever the setting).
_LARGER = 16 * _NBYTES


@pytest.fixture(autouse=True)
def _enabled(monkeypatch):
    monkeypatch.delenv("SKPERCEPTUAL_RETAIN_FREED_MEMORY", raising=False)


def _from_heap(nbytes=_NBYTES):
    """Whether glibc serves a fresh large block from its heap (below the program break).

    A block from the heap outlives ``free`` for the next request; a block of
    its own ``mmap`` is unmapped on ``free``, so the next one page-faults
    and is zeroed anew.
    """
    block = torch.empty(nbytes, dtype=torch.uint8)
    sbrk = _allocator._glibc().sbrk
    sbrk.restype, sbrk.argtypes = ctypes.c_void_p, [ctypes.c_long]
    return block.data_ptr() < sbrk(0)


def test_large_blocks_come_from_the_heap_only_while_active():
    assert not _from_heap(_LARGER)
    with retain_freed_memory():
        assert _from_heap()
    assert not _from_heap(_LARGER)


def test_nested_uses_restore_on_the_last_exit():
    with retain_freed_memory():
        with retain_freed_memory():
            pass
        assert _allocator._active == 1
        assert _from_heap()
    assert _allocator._active == 0
    assert not _from_heap(_LARGER)


def test_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv("SKPERCEPTUAL_RETAIN_FREED_MEMORY", "0")
    with retain_freed_memory():
        assert _allocator._active == 0
        assert not _from_heap(_LARGER)


@pytest.mark.parametrize("name, value", [("MALLOC_MMAP_THRESHOLD_", "1048576"),
                                         ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0"),
                                         ("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")])
def test_a_user_tuned_malloc_is_left_alone(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with retain_freed_memory():
        assert _allocator._active == 0


def test_fit_runs_with_it_and_restores(images):
    seen = []

    class Record(skorch.callbacks.Callback):
        def on_batch_end(self, net, **kwargs):
            seen.append(_allocator._active)

    PerceptualAETransformer(z_dim=4, max_epochs=1, batch_size=8, loss="pixel",
                                 validation_fraction=None, callbacks=[Record()],
                                 device="cpu", random_state=0).fit(images)
    assert seen and set(seen) == {1}
    assert _allocator._active == 0
