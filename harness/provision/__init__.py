"""racesim.provision."""
