"""The reference system's statements as bare SQL: the baselines ``racesim bench`` measures against.

``MARK`` and ``CLEAR`` are the legacy store's two statements; ``RESET`` puts the
marker back; ``TOUCH`` is one plain UPDATE of the state row.
"""

from __future__ import annotations

MARK = (
    "UPDATE recommendations_state SET last_collection_started_at = NOW() WHERE id = 1"
    " AND (last_collection_started_at IS NULL"
    " OR last_collection_started_at < NOW() - INTERVAL '5 minutes')"
)
CLEAR = "UPDATE recommendations_state SET last_collection_started_at = NULL WHERE id = 1"
RESET = (
    "UPDATE recommendations_state SET last_collection_started_at = NULL,"
    " last_collected_at = NULL WHERE id = 1"
)
TOUCH = "UPDATE recommendations_state SET last_collected_at = now() WHERE id = 1"
