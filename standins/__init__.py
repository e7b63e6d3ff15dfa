"""Local stand-ins for the third-party HTTP APIs invoiceflow calls (CRM, accounting).

They cannot be reached from here, so each stand-in is a small ASGI app with the provider's real paths,
auth headers, error shapes and rate limits, served on loopback by `serve()`. Tests, `invoiceflow demo`,
`invoiceflow dev --accounting=...` and the benchmark all use the same apps.
"""
