"""How the API shows stored objects: rows to response schemas, shared by routes
(routers never import each other)."""
