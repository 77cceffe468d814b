"""Shipped TOML data files: physics and hardware constant presets (``electronic_45nm``) and run
config presets (``paper``: the paper-faithful RSGN, ``rsgn train --config paper``)."""
