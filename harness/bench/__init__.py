"""racesim.bench."""
