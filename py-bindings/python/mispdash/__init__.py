"""mispdash: the live MISP situational-awareness dashboard, in-process.

The Rust dashboard (the same code as the ``mispdash`` binary) as a Python module, for Apache
mod_wsgi and for MISP's Python tooling::

    import mispdash

    dash = mispdash.Dashboard("/etc/mispdash/config.cfg")
    application = dash.application      # a WSGI callable: every route and page
    dash.start()                        # subscribers and dispatcher in background threads
    print(dash.status()["buffer"])
    dash.ingest("misp_json", {"Event": {...}})
    dash.top_contributors()

Errors that ``mispdash run`` would stop on raise :class:`MispdashError` with its message.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import os
import json
import threading
import weakref
from typing import Any, Mapping, Optional, Union
from urllib.parse import urlencode

from . import _mispdash
from ._mispdash import MispdashError

__all__ = ["Dashboard", "MispdashError", "__version__"]
__version__: str = _mispdash.version()

Day = Union[None, float, int, _dt.date, _dt.datetime]

_started: "weakref.WeakSet[Dashboard]" = weakref.WeakSet()
_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    # Subscribers write what they hold before the interpreter goes.
    for dash in list(_started):
        dash.stop()


def _epoch(day: Day) -> Optional[float]:
    """An epoch the API takes: a datetime as it is, a date at its noon (any time of a day
    names the day; noon is safe from zone offsets)."""
    if day is None:
        return None
    if isinstance(day, _dt.datetime):
        return day.timestamp()
    if isinstance(day, _dt.date):
        return _dt.datetime(day.year, day.month, day.day, 12).timestamp()
    return float(day)


class Dashboard:
    """The dashboard of one ``config.cfg``.

    ``config_path`` defaults to ``MISPDASH_CONFIG``, then ``config/config.cfg``, then built-in
    defaults, as for ``mispdash run``. Nothing connects until used: the routes are made on
    the first request (or :meth:`prepare`), the ingest by :meth:`start`.

    ``threads``: the WSGI server's threads per process (the Apache shim passes mod_wsgi's).
    Each open live stream holds one of them, so streams get at most three quarters (a quarter per
    client) and the rest stay free for page requests.
    """

    def __init__(self, config_path: Union[str, "os.PathLike[str]", None] = None, threads: Optional[int] = None) -> None:
        self._native = _mispdash.Dashboard(None if config_path is None else str(config_path), threads)

    @property
    def application(self) -> Any:
        """The WSGI application (PEP 3333) serving every route and page of the server.

        Live streams are iterables that wait with the interpreter released: one thread per
        open stream is all they cost."""
        return self._native.application

    def prepare(self) -> None:
        """Makes the routes now, so that a configuration the server refuses (a default
        session secret with login on, say) raises here rather than at the first request."""
        self._native.prepare()

    def start(self, subscribe: bool = True, dispatch: bool = True) -> None:
        """Starts the subscribers (one per ``misp_instances`` entry) and the dispatcher in
        background threads. Calling it again does nothing; it is stopped at exit."""
        self._native.start(subscribe, dispatch)
        with _lock:
            _started.add(self)

    def stop(self) -> None:
        """Stops what :meth:`start` started, and waits for it."""
        self._native.stop()

    @property
    def running(self) -> bool:
        """Whether :meth:`start` runs in this process."""
        return bool(self._native.running)

    def status(self) -> dict:
        """The status, as ``/status`` gives it: feeds, buffer, dead letters, Redis, GeoIP."""
        return json.loads(self._native.status_json())

    def ingest(self, topic: str, payload: Union[Mapping[str, Any], str, bytes], feed: str = "python") -> None:
        """Hands one MISP message (``topic`` as MISP publishes it, e.g. ``misp_json``; the
        payload as a dict, JSON text or JSON bytes) to the buffer, as a subscriber named
        ``feed`` would; the dispatcher counts it."""
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")
        elif not isinstance(payload, str):
            payload = json.dumps(payload)
        self._native.ingest(topic, payload, feed)

    def get(self, path: str, **params: Any) -> Any:
        """Any JSON route of the API (``"/_getHitMap"``, ...), asked by this program (no login
        needed), its answer decoded. Raises :class:`MispdashError` on an error status."""
        query = urlencode({k: v for k, v in params.items() if v is not None})
        status, body = self._native.get(path + ("?" + query if query else ""))
        if status >= 400:
            raise MispdashError(f"{path}: {status}: {body}")
        return json.loads(body)

    # The main questions, as plain Python objects.

    def top_contributors(self, month: Day = None) -> list:
        """The month's ranking (the month of ``month``, default now): organisation, points,
        ranks and badges, best first."""
        return self.get("/_getTopContributor", date=_epoch(month))

    def org_rank(self, org: str) -> dict:
        """An organisation's monthly points and rank, the points to its next rank, its
        contribution rank and honour badges."""
        return self.get("/_getOrgRank", org=org)

    def trendings(self, since: Day, until: Day = None, what: str = "events", top: int = 10) -> list:
        """The most active ``events``, ``categs`` or ``tags`` per day from ``since`` to
        ``until`` (default now): ``[[day_epoch, [[item, count], ...]], ...]``, newest first."""
        route = {"events": "/_getTrendingEvents", "categs": "/_getTrendingCategs", "tags": "/_getTrendingTags"}.get(what)
        if route is None:
            raise ValueError(f"what is one of events, categs, tags; not {what!r}")
        until_epoch = _epoch(until) if until is not None else _dt.datetime.now().timestamp()
        return self.get(route, dateS=_epoch(since), dateE=until_epoch, topNum=int(top))

    def login_punchcard(self, day: Day = None, org: Optional[str] = None) -> list:
        """Logins per weekday (Sunday first) and hour over the 7 days to ``day`` (default
        now), for one organisation or all."""
        return self.get("/_getUserLogins", date=_epoch(day), org=org)

