"""`actbert serve`: a local web app to search a clip index and look at its videos (docs/api.md).

`SearchService` holds the model (loaded once) and the index; `create_app(service)` is the FastAPI app.
"""
from actbert.serve.app import create_app, is_loopback
from actbert.serve.service import Busy, IndexProblem, SearchService, ServeOptions

__all__ = ["create_app", "is_loopback", "SearchService", "ServeOptions", "Busy", "IndexProblem"]
