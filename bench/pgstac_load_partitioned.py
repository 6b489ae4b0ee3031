"""The harness's `load_pgstac.py`, with pgstac's time partitioning set on chosen collections.

pgstac partitions `items` by collection, and each collection further by `datetime` when its
`partition_trunc` is `year` or `month` (pgstac's answer for collections of millions of items).
`load_pgstac.py` (read-only, shared with other backends) has no option for it, so this runs it
unchanged with one hook: right after the collections are loaded, before any item,
`partition_trunc` is set on the collections named by `--partition-trunc ID=year|month`
(repeatable). Every other argument goes to `load_pgstac.py`. Run with the peer venv's python
and the harness folder as the working directory:

    $PEER_VENV/bin/python $REPO/bench/pgstac_load_partitioned.py \
        --partition-trunc sentinel-2-l2a=year -- --data-dir $DATA --out load_pgstac.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partition-trunc", action="append", default=[], metavar="ID=TRUNC")
    parser.add_argument("--harness", type=Path, default=Path.cwd())
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    truncs = dict(entry.split("=", 1) for entry in args.partition_trunc)
    if not set(truncs.values()) <= {"year", "month"}:
        parser.error("--partition-trunc takes ID=year or ID=month")
    sys.path.insert(0, str(args.harness))
    import load_pgstac  # type: ignore[import-not-found]  # the harness's loader
    from pypgstac.load import Loader  # type: ignore[import-not-found]  # the peer venv's

    original = Loader.load_collections

    def load_collections(self: Any, *a: Any, **kw: Any) -> Any:
        out = original(self, *a, **kw)
        conn = self.db.connect()
        for collection, trunc in truncs.items():
            cursor = conn.execute(
                "UPDATE pgstac.collections SET partition_trunc = %s WHERE id = %s",
                [trunc, collection],
            )
            if cursor.rowcount != 1:
                raise SystemExit(f"no collection {collection!r} to partition by {trunc}")
            print(f"[load] partition_trunc {collection} = {trunc}", file=sys.stderr)
        conn.commit()
        return out

    Loader.load_collections = load_collections
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return int(load_pgstac.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
