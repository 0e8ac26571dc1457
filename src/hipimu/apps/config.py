"""The user's configuration files (``$HIPIMU_CONFIG_DIR``, default ``~/.config/hipimu``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from hipimu.core.norms import DEFAULT_BANDS_DEG

__all__ = ["config_dir", "load_bands"]


def config_dir() -> Path:
    return Path(os.environ.get("HIPIMU_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".config", "hipimu"))


def load_bands(path: Path | None = None) -> dict[str, dict[str, tuple[float, float]]]:
    """The default norm bands (:data:`hipimu.core.norms.DEFAULT_BANDS_DEG`), each overridden
    by ``path`` (or the user's ``bands.json`` when present): ``{"test": {"ir": [lo, hi], ...}}``,
    degrees; ``test`` may also be ``goals``."""
    from hipimu.errors import InputError

    bands = {t: dict(b) for t, b in DEFAULT_BANDS_DEG.items()}
    if path is None:
        path = config_dir() / "bands.json"
        if not path.exists():
            return bands
    try:
        raw = json.loads(Path(path).read_text())
        for test, quantities in raw.items():
            for q, (lo, hi) in quantities.items():
                lo, hi = float(lo), float(hi)
                if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                    raise ValueError(f"{test}.{q}: the upper bound must be above the lower")
                bands.setdefault(test, {})[q] = (lo, hi)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: not a bands file ({exc}); expected {{\"test\": {{\"ir\": [lo, hi], ...}}}}") from exc
    return bands
