"""racesim.explore."""
