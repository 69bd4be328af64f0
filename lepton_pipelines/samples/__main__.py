"""``lepton-samples``: write sample landing files into a lake (local folder or s3:// URL)."""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta

from lepton_pipelines.lake.store import Lake
from lepton_pipelines.samples.generate import SIZES, generate_all


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lepton-samples", description=__doc__)
    parser.add_argument(
        "--lake", default=None, help="lake root (default: LEPTON_LAKE_URL / $DAGSTER_HOME/lake / ./.lake)"
    )
    parser.add_argument("--date", default=(date.today() - timedelta(days=1)).isoformat(), help="partition YYYY-MM-DD")
    parser.add_argument("--size", default="tiny", help=f"{', '.join(SIZES)} or a row count")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    size = int(args.size) if args.size.isdigit() else args.size
    manifests = generate_all(Lake(args.lake), args.date, size, args.seed)
    print(json.dumps({k: m.to_dict() for k, m in manifests.items()}, indent=2))


if __name__ == "__main__":
    main()
