"""The FastAPI app of `actbert serve`: two static pages, a JSON API (docs/api.md) and the media routes.

Pages are plain HTML + JavaScript that fill themselves from the API with `textContent` (never
`innerHTML`), and every response carries a Content-Security-Policy that allows only the app's own
scripts, so a file name or transcript line like `<img src=x onerror=...>` stays text. Media are
looked up by video id in the index (`actbert.serve.media`), never by a path taken from the URL.
"""
from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from actbert.serve.media import MediaNotFound
from actbert.serve.service import Busy, IndexProblem, SearchService

__all__ = ["create_app", "is_loopback", "STATIC"]
log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def create_app(service: SearchService, host: str = "127.0.0.1", port: int = 8000,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The app over `service`. `allowed_hosts`: Host headers accepted (default: the loopback names when
    `host` is a loopback address, which stops DNS-rebinding pages from reaching the API; anything otherwise)."""
    app = FastAPI(title="actbert serve", summary="search an ActBERT clip index", docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")
    address = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if allowed_hosts is None and is_loopback(host):
        allowed_hosts = LOOPBACK_NAMES
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if not request.url.path.startswith("/api/docs"):  # the interactive API docs load their own scripts
            response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    # -- errors: bad input and vanished files are 4xx with a sentence, never a 500 ---------------------------
    @app.exception_handler(ValueError)
    async def bad_input(_r, exc):
        return _error(400, str(exc))

    @app.exception_handler(MediaNotFound)
    async def not_found(_r, exc):
        return _error(404, str(exc))

    @app.exception_handler(Busy)
    async def busy(_r, exc):
        return _error(503, str(exc), {"Retry-After": "2"})

    @app.exception_handler(IndexProblem)
    async def index_problem(_r, exc):
        return _error(409, str(exc))

    # -- pages -------------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def search_page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/video", include_in_schema=False)
    def video_page():
        return FileResponse(STATIC / "video.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- JSON API ----------------------------------------------------------------------------------------------
    @app.get("/api/info")
    def info():
        """The index, the model, the defaults and limits, the address served and the model's load."""
        return service.info() | {"address": address, "local_only": is_loopback(host)}

    @app.get("/api/search")
    def search_get(q: str = Query("", description="the text to search for"),
                   k: int | None = Query(None, description="hits to return (default: serve's --top-k)"),
                   rerank: int | None = Query(None, description="first-stage candidates re-scored by the full model"),
                   request_id: str | None = Query(None, max_length=64, description="client id for /api/progress")):
        """Ranked clips for `q`; the same ranking as `actbert search` with the same k and rerank."""
        return service.search(q, k, rerank, request_id)

    @app.post("/api/search")
    def search_post(q: str = Body("", embed=True), k: int | None = Body(None, embed=True),
                    rerank: int | None = Body(None, embed=True),
                    request_id: str | None = Body(None, embed=True, max_length=64)):
        """The same as GET, for queries too long for a URL: JSON body `{"q": ..., "k": ..., "rerank": ...}`."""
        return service.search(q, k, rerank, request_id)

    @app.get("/api/progress/{request_id}")
    def progress(request_id: str):
        """`queued` (with `ahead`: requests before it), `running`, `done` or `unknown`."""
        return service.gate.progress(request_id)

    @app.get("/api/videos/{vid}")
    def video(vid: str):
        """One video: name, duration, file availability, transcript lines and which timelines can be made."""
        return service.video(vid)

    @app.get("/api/videos/{vid}/segments")
    def segments(vid: str, request_id: str | None = Query(None, max_length=64)):
        """Runs of predicted steps by the segmentation head (`--segmenter`); 404 without one."""
        return service.segments(vid, request_id)

    @app.post("/api/videos/{vid}/localize")
    def localize(vid: str, steps: list[str] = Body(..., embed=True),
                 request_id: str | None = Body(None, embed=True, max_length=64)):
        """The second of each of `steps` (in order) in the video, zero-shot by the model."""
        return service.localize(vid, steps, request_id)

    # -- media -------------------------------------------------------------------------------------------------
    @app.get("/media/video/{vid}")
    def media_video(vid: str):
        """The video file the index lists for `vid` (HTTP range requests supported)."""
        return FileResponse(service.catalog.file_for(vid))

    @app.get("/media/thumb/{vid}")
    def media_thumb(vid: str, t: float = Query(0.0, ge=0.0, le=1e7)):
        """A JPEG frame of `vid` at `t` seconds."""
        return Response(service.thumbnail(vid, t), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    return app
