"""Available memory, and refusing a request that would not fit before anything is allocated.

The lowest layer's share of the memory guards: every package asks :func:`require_memory`
before it builds something large (a file's arrays in :mod:`attention.npzfile`, a chain node
in :mod:`reductions.guards`, a generated instance in :mod:`reductions.generators`).  The
refusal is a :class:`~attention.errors.ResourceError` naming the estimate, what is available
and the option that would work, instead of a ``MemoryError`` halfway or an out-of-memory kill.

Available memory is the smallest of ``MemAvailable`` (``/proc/meminfo``; elsewhere
``os.sysconf`` available pages), the cgroup limit minus usage, and the address-space rlimit
minus the resident size.  :data:`HEADROOM` of it is usable by one request.

Examples
--------
>>> require_memory(2**50, "a demonstration", "use a smaller instance", available=2**30)
Traceback (most recent call last):
...
attention.errors.ResourceError: a demonstration needs about 1.1e+06 GB but 0.97 GB are available (90% of 1.1 GB); use a smaller instance
"""

from __future__ import annotations

import os
from pathlib import Path

from attention.errors import ResourceError

#: Fraction of the available memory a single request may use.
HEADROOM = 0.9

__all__ = ["HEADROOM", "available_memory", "usable_memory", "require_memory", "format_gb"]


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """Limit minus usage of this process's cgroup (v2, else v1), or None when unlimited."""
    pairs = (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    )
    for limit_path, usage_path in pairs:
        try:
            limit = Path(limit_path).read_text().strip()
            usage = int(Path(usage_path).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:
            return None
        return max(int(limit) - usage, 0)
    return None


def _rlimit_available() -> int | None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(int(soft) - _current_rss(), 0)


def _current_rss() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def available_memory() -> int:
    """Bytes this process can still allocate without swapping or being killed (best estimate).

    The smallest of ``MemAvailable`` (or the available physical pages), the cgroup's limit
    minus its usage, and the address-space rlimit minus the resident size.

    Examples
    --------
    >>> available_memory() > 0
    True
    """
    candidates = [_meminfo_available() or _sysconf_available(), _cgroup_available(), _rlimit_available()]
    known = [c for c in candidates if c is not None]
    return min(known) if known else 2**62


def usable_memory(available: int | None = None) -> float:
    """``HEADROOM`` of ``available`` (default :func:`available_memory`): what one request may use."""
    return HEADROOM * (available_memory() if available is None else int(available))


def format_gb(x: float) -> str:
    """Bytes in GB (``1e9``), two significant digits: ``format_gb(5e9) == '5 GB'``."""
    return f"{x / 1e9:.2g} GB"


def require_memory(bytes_needed: float, what: str, alternative: str, available: int | None = None) -> None:
    """Raise :class:`ResourceError` unless ``bytes_needed`` fits in ``HEADROOM`` of the available memory.

    Parameters
    ----------
    bytes_needed : the estimate.
    what : what would be built (named in the message).
    alternative : the option that would work instead (ends the message).
    available : bytes available (default :func:`available_memory`).
    """
    available = available_memory() if available is None else int(available)
    usable = HEADROOM * available
    if bytes_needed > usable:
        raise ResourceError(
            f"{what} needs about {format_gb(bytes_needed)} but {format_gb(usable)} are available "
            f"({HEADROOM:.0%} of {format_gb(available)}); {alternative}"
        )
