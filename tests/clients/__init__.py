"""Real device clients (SWUpdate, rauc-hawkbit) against a live ddi-lite process."""
