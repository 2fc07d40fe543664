"""The integer reference model (the arithmetic), the cycle-accurate simulator and the energy model."""
