"""Local, protocol-faithful stand-ins of external messaging APIs, for loopback tests."""
