# Test-only DNS override for Python clients (loaded through PYTHONPATH): OISP_TEST_RESOLVE="host=addr,..."
# sends those hosts to a local fake provider while SNI and Host stay the real API's, as curl --resolve does.
import os
import socket

_map = dict(p.split("=", 1) for p in os.environ.get("OISP_TEST_RESOLVE", "").split(",") if "=" in p)
if _map:
    _orig = socket.getaddrinfo

    def _getaddrinfo(host, *args, **kwargs):
        return _orig(_map.get(host, host), *args, **kwargs)

    socket.getaddrinfo = _getaddrinfo
