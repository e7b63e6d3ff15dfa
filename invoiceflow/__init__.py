"""invoiceflow: invoice workflows for IT service companies, on Temporal."""
