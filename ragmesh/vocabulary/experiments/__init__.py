"""The experiments file: its model, its TOML parsing and the settings a variant may change."""
