"""The Python package that the bundle's configs reference (``scripts.<module>.<name>``): what MONAI lacks for
this method, its baselines and its datasets. Importing it installs the one-line error report (``errors``)."""

from .errors import install

install()
