"""Content library: programs, modules and instruments loaded from ``modules/``."""
