from __future__ import annotations

import subprocess
import sys

from shopstream.config import Settings
from shopstream.publisher import InMemoryPublisher, get_publisher, producer_config, set_publisher


def test_local_producer_is_idempotent_plaintext():
    config = producer_config(Settings(kafka_bootstrap_servers="127.0.0.1:9092", kafka_auth="none"))
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert "security.protocol" not in config


def test_msk_producer_signs_oauthbearer_tokens_with_iam(monkeypatch):
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    calls = []

    def fake_token(region):
        calls.append(region)
        return "signed-token", 1_900_000_000_000

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", staticmethod(fake_token))
    settings = Settings(kafka_bootstrap_servers="b-1.msk:9098", kafka_auth="iam", aws_region="eu-central-1")
    config = producer_config(settings)
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.mechanisms"] == "OAUTHBEARER"
    assert config["oauth_cb"]("") == ("signed-token", 1_900_000_000)
    assert calls == ["eu-central-1"]


def test_one_publisher_per_process():
    installed = InMemoryPublisher()
    set_publisher(installed)
    assert get_publisher() is installed is get_publisher()


def test_importing_the_library_connects_to_nothing_and_loads_no_sdk():
    code = (
        "import sys\n"
        "import shopstream.catalog, shopstream.consumer, shopstream.outbox, shopstream.publisher, shopstream.schemas\n"
        # Powertools imports the bare botocore package for its user agent; clients come from botocore.client.
        "heavy = [m for m in ('boto3', 'botocore.client', 'confluent_kafka', 'aws_xray_sdk') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": "layers/shopstream/python", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stdout
