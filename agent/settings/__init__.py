"""Configuration: the schema and its parsing, start-up checks of what it names, secret files."""
