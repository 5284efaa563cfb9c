"""``python -m hand_nas.cli``: the ``hand-nas`` command."""
import sys

from hand_nas.cli import main

sys.exit(main())
