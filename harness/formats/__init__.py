"""racesim.formats."""
