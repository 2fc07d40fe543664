"""Reference model (the arithmetic) and, later, the cycle-accurate simulator."""
