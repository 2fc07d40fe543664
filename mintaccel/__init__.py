"""mintaccel: low-bit spiking neural networks to verified, multiplier-less FPGA accelerators."""

__version__ = "0.1.0"
