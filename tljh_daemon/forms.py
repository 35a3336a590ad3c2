"""Reading form bodies (login, XSRF-protected pages, the OAuth token endpoint)."""

from aiohttp import web


async def read_form(request):
    """request.post(), with a 400 naming the problem for a body aiohttp cannot parse as the
    form its Content-Type claims (e.g. multipart/form-data without a boundary)."""
    try:
        return await request.post()
    except UnicodeDecodeError:
        raise  # the errors middleware answers these for every kind of body
    except ValueError as e:
        raise web.HTTPBadRequest(text=f"The form body could not be parsed: {e}") from None
