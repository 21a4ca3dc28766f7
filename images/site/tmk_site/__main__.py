"""`python -m tmk_site`: serve the site with the settings from the environment."""

import logging

import uvicorn

from .app import create_app
from .settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    # uvicorn's own access log prints query strings, and links carry tokens there: the app logs paths instead.
    # The peer is who the site names to the API (forwarded_for): uvicorn must not replace it with a header's.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=False, log_config=None,
                proxy_headers=False)


if __name__ == "__main__":
    main()
