"""Use cases, one function per use case: the API routes and webhook receivers call these."""
