"""The kernel everything imports and that imports nothing of the app: settings, signed links, the
Temporal client."""
