"""Trust-anchor verifiers: one module per anchor kind behind one small interface (base.py)."""
