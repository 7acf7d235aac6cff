"""Run the gateway: `python -m services.gateway`."""

import uvicorn

from services.gateway.main import create_app
from services.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # our JSON logging, set up by create_app
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
