"""Keep freed memory inside the process while a model trains.

glibc's ``malloc`` serves every request above its mmap threshold (at most
32 MB) with a fresh ``mmap`` and gives it back with ``munmap`` when it is
freed. A training step at batch 512 frees and re-allocates more than ten
activations and gradients of 25-60 MB, so every step maps, page-faults and
zeroes them anew (the benchmarks page measures what that costs). PyTorch has no
caching allocator for CPU memory. While :func:`retain_freed_memory` is
active, glibc keeps large blocks on its heap instead (no ``mmap``, no
trimming), so they are reused from one step to the next; on exit mmap is
allowed again and the free memory is returned to the system with
``malloc_trim``. Like ``threadpoolctl``, the setting is process-wide but
scoped: it lasts while at least one fit runs. The price is a higher peak,
as blocks on the heap fragment.

Elsewhere than glibc (macOS, Windows, musl) it does nothing, nor where the
user already tuned malloc (``MALLOC_*_`` variables, ``glibc.malloc``
tunables, or another allocator in ``LD_PRELOAD``). Set the environment
variable ``SKPERCEPTUAL_RETAIN_FREED_MEMORY=0`` to turn it off.
"""

import contextlib
import ctypes
import functools
import os
import sys
import threading

# mallopt(3) parameters.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
# What is restored. Any mallopt call ends glibc's dynamic thresholds for
# the process; these are where that rule settles once the process frees a
# mapped block of 32 MB or more (a training step at batch 512 frees
# several): mmap above the largest threshold glibc allows, trim at twice
# that. A process whose fits are all small would have kept lower
# thresholds, and after one maps somewhat fewer blocks than it would have.
_SETTLED_MMAP_THRESHOLD = 32 * 2**20
_SETTLED_TRIM_THRESHOLD = 2 * _SETTLED_MMAP_THRESHOLD
_DEFAULT_MMAP_MAX = 65536
# mallopt takes an int: trim only once 2 GB lie free at the heap's top.
_RARELY_TRIM = 2**31 - 1

_lock = threading.Lock()
_active = 0


@functools.cache
def _glibc():
    """Return the process's C library if it is glibc, else None (looked up once)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - every Linux Python can load itself
        return None
    needed = ("gnu_get_libc_version", "mallopt", "malloc_trim")
    if not all(hasattr(libc, name) for name in needed):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


#: Settings by which a user has already chosen how malloc behaves: left alone.
_USER_MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")


def _enabled():
    """Whether to apply the setting: not turned off, and malloc is glibc's, untuned."""
    if os.environ.get("SKPERCEPTUAL_RETAIN_FREED_MEMORY", "1") == "0":
        return False
    if any(name in os.environ for name in _USER_MALLOC_SETTINGS):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    # jemalloc, tcmalloc or mimalloc preloaded: glibc's malloc is not the one in use.
    return "malloc" not in os.environ.get("LD_PRELOAD", "")


@contextlib.contextmanager
def retain_freed_memory():
    """Context manager: glibc keeps freed blocks for reuse until the last exit.

    Re-entrant and thread-safe: the first of overlapping uses changes the
    setting, the last one restores it.

    Yields
    ------
    None
        Nothing is set where :func:`_enabled` says no (not glibc, a tuned
        malloc, or ``SKPERCEPTUAL_RETAIN_FREED_MEMORY=0``).

    Examples
    --------
    >>> import torch
    >>> with retain_freed_memory():
    ...     x = torch.zeros(8 * 2**20)  # 32 MB: from the heap, not a fresh mmap
    >>> float(x.sum())
    0.0
    """
    global _active
    libc = _glibc() if _enabled() else None
    if libc is None:
        yield
        return
    with _lock:
        if _active == 0:
            # Trim threshold first: once mmap is off, a large free must not
            # hand the block straight back to the system from the heap top.
            libc.mallopt(_M_TRIM_THRESHOLD, _RARELY_TRIM)
            libc.mallopt(_M_MMAP_MAX, 0)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP_THRESHOLD)
                libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM_THRESHOLD)
                libc.malloc_trim(0)
