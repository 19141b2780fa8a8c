"""The Tencent Cloud API 3.0 front of the service: events, TC3 signatures, the envelope, actions."""
