"""How the engine runs a plan: what it checks, and its bounds on waiting."""

from __future__ import annotations

from dataclasses import dataclass, field

from racesim.formats.commits import split_by_default


@dataclass(frozen=True)
class Options:
    stop_at_first: bool = False
    compare_model: bool = True
    """Run the system's model beside a variant that follows it, and check that they agree."""
    wait_bound: float = 2.0
    """Seconds a waiting step may stay blocked when nothing else can run any more."""
    step_bound: float = 10.0
    """Seconds any one step may take before the harness cancels it."""
    poll: float = 0.001
    """How often a running step is looked at (seconds); bounds blocked-step detection."""
    split_commits: bool = field(default_factory=split_by_default)
    """Run a program's autocommit ``sql`` statement that changes data as two steps: the
    statement in a transaction, then its ``COMMIT`` (``NAME/commit``; see commit_steps).
    On unless ``RACESIM_SPLIT_COMMITS=0``; a plan's ``split_commits`` (a scenario
    file's) decides over it."""
