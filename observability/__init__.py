"""Operating invoiceflow: Prometheus metrics, structured logs with secrets redacted, OpenTelemetry traces.

Every metric name lives in ``observability.metrics`` (the dashboard, the alert rules and the tests read
them from there); the API, the worker and the CLI only call the helpers here. Nothing in this package
imports the app's routes, workflows or activities, so any of them can use it."""
