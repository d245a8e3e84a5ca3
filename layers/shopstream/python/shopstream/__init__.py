"""shopstream shared library, shipped to every function as a Lambda layer.

Modules are imported explicitly (``from shopstream.envelope import ...``); this file
stays empty so that importing one module never pulls in boto3 or confluent-kafka.
"""
