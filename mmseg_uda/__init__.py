"""Everything DAFormer/HRDA adds to mmseg, registered into mmseg's registries on import.

`compat` is imported first: it patches mmcv/mmseg for torch 2.x before anything else runs.
The import order below matters, so import sorting is off for this file (pyproject.toml).
"""
from . import compat  # noqa: F401  (must stay first)

import blv_patches  # noqa: F401,E402  (registers BLVLoss before the models use it)

from . import core, datasets, models  # noqa: F401,E402  (registration side effects)

__version__ = '0.1.0'
