"""blockd's QAPI code generator (Python 3 stdlib only)."""
