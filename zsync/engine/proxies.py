"""The session a client sends on: its proxy resolved once, judged by :mod:`zsync.proxy_rules`."""

from __future__ import annotations

import requests
import requests.utils

from zsync.proxy_rules import check, uses_proxy


def session_for(base: str) -> requests.Session:
    """A session whose proxy and CA settings are resolved from the environment once.

    requests otherwise rescans the whole environment for proxies twice per request: at 0 ms
    latency that was a third of the CPU each create cost. The proxy is then judged by
    :func:`check`; a plain-http base on this machine gets none.
    """
    session = requests.Session()
    settings = session.merge_environment_settings(base, {}, None, None, None)
    proxies: dict[str, str] = dict(settings["proxies"])
    if not uses_proxy(base):
        proxies = {}
    else:
        check(base, requests.utils.select_proxy(base, proxies))
    session.proxies.clear()
    session.proxies.update(proxies)
    session.verify = settings["verify"]
    session.trust_env = False
    return session
