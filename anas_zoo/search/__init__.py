"""Search for device-specific sub-networks: evolutionary search and the latency model it uses as a constraint."""
