"""Peak resident memory of the current process, the figure users compare models by."""

from __future__ import annotations

import sys


def peak_rss_bytes() -> int:
    """Highest resident set size so far; mapped model pages that were touched count, as they should."""
    if sys.platform == "win32":
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0))
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
