"""Which emulator request answers the same route as each official example."""
