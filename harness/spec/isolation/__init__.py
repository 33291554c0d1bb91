"""What only compatibility with PostgreSQL's isolationtester needs: its permutation
algorithm on libpq sessions (``run``, ``sessions``), its printing (``table``: libpq's
``PQprint`` layout), ``--expected`` diffs (``compare``) and the real tool, found
beside the server's binaries (``tool``). Everything else a spec run is (its events,
the explorers, the saved ``.spec``) goes through racesim's model and reports."""
