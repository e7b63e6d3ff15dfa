"""Accounting provider stand-ins (Xero, QuickBooks Online, FreshBooks): each module's ``create_*_app``
returns an ASGI app and the in-memory state behind it, with fault switches for tests."""
