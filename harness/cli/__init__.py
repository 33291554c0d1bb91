"""racesim.cli."""
