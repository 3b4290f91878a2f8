"""``python -m mechmnistic`` is the ``mechmnistic`` command."""

import sys

from .cli import main

sys.exit(main())
