"""Results read back from their files: `qfdjax.load(path)` (every seal and digest checked)."""
