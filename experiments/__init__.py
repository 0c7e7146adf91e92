"""Methods x label fractions x seeds: presets (``presets/``, ``grid``), one bundle run per process (``runner``),
summaries with confidence intervals (``aggregate``), the report and its figures (``report``, ``figures``).
Repository tooling, not shipped with the bundle; run from the repository root: ``python -m experiments``."""

import os
import sys

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_ROOT = os.path.join(REPOSITORY_ROOT, "bundle")
if BUNDLE_ROOT not in sys.path:
    sys.path.insert(0, BUNDLE_ROOT)   # the bundle's scripts package, found as MONAI finds it from the bundle root
