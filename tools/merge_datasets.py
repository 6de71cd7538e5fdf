"""Make one data set of several, to train on them together.

    python tools/merge_datasets.py OUT DATA DATA [DATA ...]

OUT gets a manifest naming every clip of the DATA folders and a link to each (no frame is
copied); ids take each folder's name as a prefix, e.g. ``st24_id000``. Then
``s3d-fast train --data OUT``.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a clone without installing

from s3d_fast.data.errors import DataError  # noqa: E402
from s3d_fast.data.manifest import SPLITS  # noqa: E402
from s3d_fast.data.merge import merge_datasets  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the merged data set's folder (new, or empty)")
    parser.add_argument("data", nargs="+", help="data set folders (manifest.json), at least two")
    args = parser.parse_args(argv)
    try:
        merged = merge_datasets(args.out, args.data)
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    by_split = {split: len(merged.clips_in(split)) for split in SPLITS}
    print(
        f"wrote {args.out}: {len(merged.identities)} identities, "
        f"{by_split['train']} training and {by_split['heldout']} held-out clips"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
