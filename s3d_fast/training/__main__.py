"""``python -m s3d_fast.training``: one training process (what torchrun launches)."""

import sys

from .cli import main

sys.exit(main())
