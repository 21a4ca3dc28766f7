"""`python -m tmk_api`: serve the session API of one install."""

import gc
import logging

import uvicorn

from tmk_common.constants import FIELD_MANAGER_API
from tmk_common.kubeclient import api_client
from tmk_common.logs import configure_logging
from tmk_common.session_store import SessionStore

from .app import create_app
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    configure_logging(json_format=settings.log_json)
    if settings.keyless:
        logging.getLogger("tmk.api").warning("keyless mode: anyone who reaches this API can create sessions")
    store = SessionStore(api_client(settings.kubeconfig, field_manager=FIELD_MANAGER_API), settings.namespace,
                         settings.install)
    app = create_app(settings, store)
    # What the imports and the app made lives as long as the process: kept out of the collector's full passes,
    # which otherwise went over it all and held every request in flight for about 70 ms (bench_api.py).
    gc.collect()
    gc.freeze()
    # The access log is off: a query string may carry a token. The metrics count the requests instead.
    # Behind the Ingress controller and the site, the client is the address they name in X-Forwarded-For
    # (uvicorn takes the nearest one not itself a trusted proxy): what anonymous calls are limited by.
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_config=None,
                proxy_headers=True, forwarded_allow_ips=settings.trusted_proxies)


if __name__ == "__main__":
    main()
