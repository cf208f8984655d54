"""`python -m certserver`: the same as the `certserver` command."""

import sys

from certserver.cli import main

sys.exit(main())
