"""Gateway mode: ddi-lite as the local face of an upstream hawkBit (issue 14)."""
