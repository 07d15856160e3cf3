"""The station core: every rule of the station, without I/O (messages and `now` in, effects
out; agent.core.station)."""
