"""racesim.model."""
