"""GET /metrics: Prometheus exposition."""

from fastapi import APIRouter

router = APIRouter()
