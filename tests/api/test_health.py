"""`/_mgmt/health` as a load balancer's readiness probe: 503 DOWN when the catalogue
database is stopped or does not answer, within the probe's deadline; UP again after."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import URL

from api import create_app
from catalogue.embedded import EmbeddedCluster
from catalogue.schema import upgrade
from catalogue.settings import MonitoringSettings
from tests.helpers import FreezableProxy, live_server, make_settings

pytestmark = pytest.mark.slow


def test_health_answers_down_while_the_database_is_stopped(own_cluster: EmbeddedCluster) -> None:
    url = own_cluster.url()
    upgrade(url)
    with live_server(create_app(make_settings(url))) as base:
        up = httpx.get(f"{base}/_mgmt/health")
        assert up.status_code == 200
        assert up.json()["status"] == "UP"
        assert up.json()["database"]["status"] == "UP"
        assert up.json()["database"]["pool"]["size"] == 10

        own_cluster.stop()
        down = httpx.get(f"{base}/_mgmt/health", timeout=30)
        assert down.status_code == 503
        assert down.headers["cache-control"] == "no-store"
        body = down.json()
        assert body["status"] == "DOWN"
        assert body["database"]["status"] == "DOWN"
        assert body["database"]["error"]  # the error's class: the body is public
        assert str(url.port) not in down.text
        # liveness stays separate: the process itself is fine
        assert httpx.get(f"{base}/_mgmt/ping").status_code == 200

        own_cluster.start()
        again = httpx.get(f"{base}/_mgmt/health", timeout=30)
        assert again.status_code == 200
        assert again.json()["status"] == "UP"


def test_health_answers_down_within_its_deadline_when_the_database_hangs(
    fresh_db_url: URL,
) -> None:
    proxy = FreezableProxy(fresh_db_url.port or 5432)
    try:
        settings = make_settings(
            fresh_db_url.set(host="127.0.0.1", port=proxy.port),
            monitoring=MonitoringSettings(health_timeout_s=0.5),
        )
        with live_server(create_app(settings)) as base:
            assert httpx.get(f"{base}/_mgmt/health").status_code == 200
            proxy.freeze()
            # the client's own timeout fails this test should the probe hang
            down = httpx.get(f"{base}/_mgmt/health", timeout=10)
            assert down.status_code == 503
            assert down.json()["database"] == {"status": "DOWN", "error": "no answer within 0.5 s"}
            proxy.thaw()
            again = httpx.get(f"{base}/_mgmt/health", timeout=10)
            assert again.status_code == 200
    finally:
        proxy.close()
