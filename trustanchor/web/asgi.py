"""ASGI entry point of ``trustanchor serve``: ``trustanchor.web.asgi:app`` (settings from
$TRUSTANCHOR_CONFIG). The Flask app behind :class:`~trustanchor.web.serving.WsgiOverAsgi`, so
that request bodies are read under a deadline without holding a thread (see serving.py)."""

from trustanchor.log_setup import configure_logging
from trustanchor.web.app import create_app
from trustanchor.web.serving import BodyDeadline, WsgiOverAsgi, threads_per_worker

configure_logging()
_flask = create_app()
_services = _flask.extensions["trustanchor"]
_limits = _services.settings.limits
app = WsgiOverAsgi(
    _flask,
    threads=threads_per_worker(_services.db.dialect),
    deadline=BodyDeadline(
        initial=_limits.body_read_timeout,
        maximum=_limits.body_read_timeout_max,
        min_rate=_limits.min_body_rate,
        max_bytes=_limits.max_body_bytes,
    ),
)
