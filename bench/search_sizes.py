"""Disk and memory of each side of the core-search benchmark: database, items table and
index sizes (per million items too), and the memory of the PostgreSQL cluster after the
measurement. Read through `psql` on the running cluster, so both sides are read alike.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from search_common import log

# the items' table + indexes: ours is one table; pgstac's is a partitioned parent whose
# partitions (one per collection, more with partition_trunc) hold the rows and indexes
SIZES_SQL = """
WITH parts AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :'schema' AND c.relkind = 'r'
      AND (c.relname = 'items' OR c.relname LIKE '\\_items\\_%')
)
SELECT json_build_object(
    'database_bytes', pg_database_size(current_database()),
    'items_table_bytes', (SELECT coalesce(sum(pg_table_size(oid)), 0) FROM parts),
    'items_index_bytes', (SELECT coalesce(sum(pg_indexes_size(oid)), 0) FROM parts),
    'items_partitions', (SELECT count(*) FROM parts),
    'indexes', (SELECT json_object_agg(i.relname, pg_relation_size(i.oid))
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid IN (SELECT oid FROM parts))
)
"""


def sizes(
    psql: Path, port: int, user: str, database: str, schema: str, password: str | None = None
) -> dict[str, Any]:
    """Sizes in bytes (and per million items: `n_items` is added by the caller)."""
    env = {**os.environ, "PGPASSWORD": password or os.environ.get("PGPASSWORD", "x")}
    command = [
        str(psql), "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", database, "-XAtq",
        "-v", f"schema={schema}", "-f", "-",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, input=SIZES_SQL, env=env, capture_output=True, text=True, timeout=300,
            check=True,
        )  # fmt: skip
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as error:
        log(f"WARNING: sizes of {database}: {error!r}")
        return {"error": repr(error)}


def per_million(found: dict[str, Any], n_items: int) -> dict[str, float]:
    scale = 1e6 / n_items / 1e9  # bytes -> GB per million items
    return {
        key.replace("_bytes", "_gb_per_m"): round(found[key] * scale, 3)
        for key in ("database_bytes", "items_table_bytes", "items_index_bytes")
        if isinstance(found.get(key), int)
    }


def cluster_memory(postmaster: int | None) -> dict[str, Any]:
    """Resident memory of the cluster's processes: RSS summed (counts shared_buffers once per
    process that touched it) and PSS summed (shared pages split between processes: the
    cluster's real share of RAM), in MB."""
    if postmaster is None:
        return {}
    pids = [postmaster] + _children(postmaster)
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"processes": len(pids), "rss_mb": round(rss / 1024), "pss_mb": round(pss / 1024)}


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found
