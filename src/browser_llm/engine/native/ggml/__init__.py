"""What the installed ggml libraries offer, read through ctypes: GPU devices, and the
promises its CPU kernels keep."""
