"""Cross-cutting response behavior: JSON errors for the API, error pages for browsers,
the X-JupyterHub-Version header, the XSRF cookie, and request latency metrics."""

import logging
import time

import aiohttp_jinja2
from aiohttp import http_exceptions, web
from aiohttp.abc import AbstractAccessLogger

from .. import identity, storage, xsrf
from ..hub import HUB

log = logging.getLogger(__name__)


def is_api(request):
    return request.path.startswith(request.app[HUB].url("/hub/api"))


def error_message(exc):
    text = exc.text or ""
    if not text or text.startswith(f"{exc.status}:"):
        return exc.reason
    return text


def json_error(status, message, headers=None):
    return web.json_response({"status": status, "message": message}, status=status, headers=headers)


def bad_request_reason(exc):
    """The client's fault behind an exception raised while reading its request, or None.

    aiohttp raises these from `request.read()/text()/post()` for a body it cannot decode
    (a `Content-Encoding` that does not match the bytes, form data that is not UTF-8);
    handlers should not each have to know that."""
    if isinstance(exc, web.RequestPayloadError):
        cause = exc.__cause__
        detail = cause.message if isinstance(cause, http_exceptions.HttpProcessingError) else str(exc)
        return f"The request body could not be read: {detail.strip()}"
    if isinstance(exc, http_exceptions.HttpProcessingError):
        return f"The request body could not be read: {exc.message.strip()}"
    if isinstance(exc, UnicodeDecodeError):
        return "The request body is not valid UTF-8"
    return None


@web.middleware
async def errors(request, handler):
    try:
        return await handler(request)
    except (web.RequestPayloadError, http_exceptions.HttpProcessingError, UnicodeDecodeError) as exc:
        reason = bad_request_reason(exc)
        log.info("Bad request body in %s %s: %s", request.method, request.path, reason)
        if is_api(request):
            return json_error(400, reason)
        return render_error(request, 400, reason)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
        if is_api(request):
            return json_error(exc.status, error_message(exc), headers)
        return render_error(request, exc.status, error_message(exc), headers)
    except Exception as exc:
        if storage.is_storage_fault(exc):
            log.error("Cannot save state for %s %s: %s", request.method, request.path, exc)
            message = (f"The hub cannot save changes right now: {storage.reason_for(exc)}. "
                       "Please try again later; if this persists, tell the hub's administrator.")
            if is_api(request):
                return json_error(503, message)
            return render_error(request, 503, message)
        log.exception("Unhandled error in %s %s", request.method, request.path)
        if is_api(request):
            return json_error(500, "Internal server error")
        return render_error(request, 500, "Internal server error")


@web.middleware
async def no_encoded_bodies(request, handler):
    """Refuse a request body with a Content-Encoding (no route needs one; JupyterHub's clients
    never send one), before anything reads it. The daemon's server does not decompress
    (`auto_decompress=False` in cli.py), so a gzip bomb costs its compressed size only."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return await handler(request)
    message = f"Request bodies with Content-Encoding {encoding!r} are not accepted; send them uncompressed"
    headers = {"Accept-Encoding": "identity"}
    if is_api(request):
        response = json_error(415, message, headers)
    else:
        response = render_error(request, 415, message, headers)
    response.force_close()  # do not read the rest of the body to keep the connection
    return response


def render_error(request, status, message, headers=None):
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"status": status, "message": message}, status=status
    )
    if headers:
        response.headers.update(headers)
    return response


def handler_name(request):
    """The route pattern (not the concrete path), so labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def measure(request, handler):
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        request.app[HUB].metrics.request_duration.labels(
            request.method, handler_name(request), str(status)).observe(time.perf_counter() - start)


@web.middleware
async def hub_headers(request, handler):
    response = await handler(request)
    response.headers["X-JupyterHub-Version"] = request.app[HUB].jupyterhub_version
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'self'")
    xsrf.set_cookie_if_new(request, response)
    identity.session_id_cookie_if_missing(request, response)
    return response


class AccessLogger(AbstractAccessLogger):
    """Method, path (never the query string: it may carry codes or tokens), status, time."""

    def log(self, request, response, time):
        self.logger.info("%s %s %s %.1fms", response.status, request.method, request.path, time * 1000)
