"""Documents a client receives: view models built from invoice rows, jinja2 templates, PDF rendering in
processes
of its own. No Temporal, no I/O besides reading templates: the worker's activities and the API both use it."""
