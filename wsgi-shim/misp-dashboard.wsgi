# mispdash under Apache mod_wsgi: the file `WSGIScriptAlias` and `WSGIImportScript` name (see
# apache/README.md).
#
# It builds the dashboard from MISPDASH_CONFIG (default /etc/mispdash/config.cfg), exposes its
# WSGI `application`, and, when MISPDASH_INGEST is 1, starts the subscribers and the
# dispatcher once in the daemon process (keep `processes=1` then: a second process would
# start a second set; mispdash's dispatcher lease keeps the keyspace right, but the feeds would
# be read twice for nothing). The vhost's `WSGIImportScript` loads this file when the daemon
# starts (at Apache's start and after every reload), so ingest does not wait for a first
# visitor. Apache passes its own environment (/etc/apache2/envvars, or a systemd drop-in) to
# the daemon processes; `SetEnv` does not reach here.

import os
import sys

try:
    import mod_wsgi  # type: ignore[import-not-found]

    _group = getattr(mod_wsgi, "application_group", "")
    # Each live stream holds one of these threads: the dashboard keeps some for pages.
    _threads = getattr(mod_wsgi, "threads_per_process", None)
except ImportError:  # another WSGI server
    _group = ""
    _threads = None

if _group:
    # A Rust extension (pyo3) can live in the main interpreter only.
    _msg = (
        "mispdash: refusing to start in the sub-interpreter %r: the dashboard must run in the "
        "main interpreter; add 'WSGIApplicationGroup %%{GLOBAL}' to its virtual host" % _group
    )
    sys.stderr.write(_msg + "\n")
    sys.stderr.flush()
    raise RuntimeError(_msg)

import mispdash  # noqa: E402

CONFIG = os.environ.get("MISPDASH_CONFIG", "/etc/mispdash/config.cfg")

dashboard = mispdash.Dashboard(CONFIG, threads=_threads)
# A configuration the server refuses (a default session secret with login on) fails here, in
# Apache's error log, rather than at the first visitor.
dashboard.prepare()
if os.environ.get("MISPDASH_INGEST", "0").lower() in ("1", "true", "yes", "on"):
    dashboard.start()
    sys.stderr.write("mispdash: subscribers and dispatcher started in process %d\n" % os.getpid())

application = dashboard.application
