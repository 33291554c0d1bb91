"""racesim.checks."""
