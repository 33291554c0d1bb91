"""racesim.engine."""
