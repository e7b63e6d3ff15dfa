"""The application layer: one function per use case, shared by the API, the CLI and activities."""
