"""The demo page and the widget's files, served from the package's ``static`` folder."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent.parent / "static"

_DEMO_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_WIDGET_HEADERS = {
    "Cache-Control": "public, max-age=300",
    # Pages that isolate themselves (COEP) may still load the widget from this origin.
    "Cross-Origin-Resource-Policy": "cross-origin",
}


async def demo_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "index.html",
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": _DEMO_CSP,
        },
    )


async def widget_script(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "widget.js",
        headers={"Content-Type": "text/javascript; charset=utf-8", **_WIDGET_HEADERS},
    )


async def widget_stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "widget.css",
        headers={"Content-Type": "text/css; charset=utf-8", **_WIDGET_HEADERS},
    )
