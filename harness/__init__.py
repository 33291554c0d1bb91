"""racesim's engine: provisioning, the virtual clock, scenarios, the scheduler and checks."""
