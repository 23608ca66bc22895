"""OpenID Connect single sign-on."""

from fastapi import APIRouter

router = APIRouter()
