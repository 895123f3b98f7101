"""The real-time tests' server fixtures, for the demo page's browser test: a real daphne
(``daphne_server``), publishing from async test code (``apublish``) and the wait for the
server's last writes before the tables are flushed."""

from realtime.tests.conftest import (  # noqa: F401 - fixtures
    _async_thread_connection_closed,
    _server_writes_settle_before_flush,
    apublish,
    daphne_server,
)
