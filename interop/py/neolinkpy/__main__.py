"""``python -m neolinkpy``: see :mod:`neolinkpy.cli`."""

import sys

from .cli import main

sys.exit(main())
