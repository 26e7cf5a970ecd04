"""The shop as a real web app: FastAPI served by uvicorn on 127.0.0.1.

:func:`create_app` builds a stateless app: the URL is the whole page state
(:meth:`~envs.web.webshop.pages.PageState.url`), so one server serves any
number of browser envs. :func:`get_server` starts one server per process and
catalog, lazily, in a daemon thread on a free port, and reuses it.

Run it by hand to look at the shop in a browser::

    python -m envs.web.webshop.app            # prints the URL; Ctrl-C stops it
"""


import socket
import threading
import time

from steprl.envs.web.webshop.pages import Shop, get_shop

__all__ = ["create_app", "ShopServer", "get_server"]


# No `from __future__ import annotations` in this module: FastAPI reads the handler's annotations at run time.
def create_app(shop: Shop):
    """A FastAPI app serving ``shop``'s pages (search, results, item, sub-pages, done); 404 for anything else."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/{path:path}", response_class=HTMLResponse)
    def page(request: Request, path: str) -> HTMLResponse:
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        state = shop.state_from_url(target)
        if state is None:
            return HTMLResponse(shop.not_found_html(), status_code=404)
        return HTMLResponse(shop.render_html(state), headers={"Cache-Control": "no-store"})

    return app


class ShopServer:
    """uvicorn serving :func:`create_app` in a daemon thread on ``127.0.0.1:<free port>``."""

    def __init__(self, shop: Shop):
        import uvicorn

        self.shop = shop
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(create_app(shop), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"webshop-server-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "ShopServer":
        """Start serving; return once the server accepts requests."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the shop server on {self.url} did not start within {timeout:.0f} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=5)


_SERVERS: dict[tuple[int, int], ShopServer] = {}
_LOCK = threading.Lock()


def get_server(num_products: int = 1200, catalog_seed: int = 0) -> ShopServer:
    """The process-wide running server of a catalog, started on first call."""
    key = (num_products, catalog_seed)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None or not server._thread.is_alive():
            server = _SERVERS[key] = ShopServer(get_shop(num_products, catalog_seed)).start()
        return server


if __name__ == "__main__":
    srv = get_server()
    print(f"WebShop serving on {srv.url}  (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
