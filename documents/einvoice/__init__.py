"""E-invoices (EN 16931): UBL 2.1 (Peppol BIS Billing 3.0, XRechnung) and UN/CEFACT CII D16B
(Factur-X / ZUGFeRD, XRechnung) from the invoice rows, validated with the official rules."""
