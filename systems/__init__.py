"""Systems that ship with racesim beside the reference one (``racesim.store``)."""
