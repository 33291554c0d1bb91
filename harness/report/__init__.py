"""racesim.report."""
