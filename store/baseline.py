"""What ``racesim bench`` measures the reference system with, and its bare-SQL baselines.

``TAKE`` and ``DROP`` are the legacy store's mark and clear statements; ``RESET``
puts the marker back; ``TOUCH`` is one plain UPDATE of the state row. The
scenarios are the schedule the engine's throughput is measured on and the one
whose lock wait measures blocked-step detection.
"""

from __future__ import annotations

TAKE = (
    "UPDATE recommendations_state SET last_collection_started_at = NOW() WHERE id = 1"
    " AND (last_collection_started_at IS NULL"
    " OR last_collection_started_at < NOW() - INTERVAL '5 minutes')"
)
DROP = "UPDATE recommendations_state SET last_collection_started_at = NULL WHERE id = 1"
RESET = (
    "UPDATE recommendations_state SET last_collection_started_at = NULL,"
    " last_collected_at = NULL WHERE id = 1"
)
TOUCH = "UPDATE recommendations_state SET last_collected_at = now() WHERE id = 1"

THROUGHPUT = "t0-t4-cron-wipes-user.toml"
BLOCKING = "maintenance-lock-blocks-mark.toml"
