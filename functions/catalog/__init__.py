"""The catalog service: a Lambda function per entry point (api, consumers, schedules)."""

from shopstream import coldstart

coldstart.pause()  # before anything else of the function loads (shopstream/coldstart.py)
