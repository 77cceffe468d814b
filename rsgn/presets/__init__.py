"""Physics and hardware constant presets (TOML data files)."""
