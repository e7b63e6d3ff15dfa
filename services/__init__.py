"""The application layer: one function per use case (create an invoice, record a payment, refund, issue a
credit note, ...) that the API routes, the webhook receivers, the console and the CLI all call.

A service owns what a use case needs beyond a single row: idempotency records, defaults, starting
workflows and running their Updates. It raises the domain errors of ``services.errors``, never an HTTP
exception: ``api.errors`` maps them to HTTP once, and a console or a CLI shows them in its own way.
"""
