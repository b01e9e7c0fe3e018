"""Admin API keys: scopes and the SHA-256 of the secret, never the secret (apikeys.py)."""

from __future__ import annotations

import msgspec

from prefill.apikeys import ApiKey
from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import api_key_key

_encoder = msgspec.json.Encoder()
_api_key_decoder = msgspec.json.Decoder(ApiKey)


class ApiKeyStore(StoreBase):
    async def save_api_key(self, key: ApiKey) -> None:
        async with unavailable_on_error():
            await self._redis.set(api_key_key(key.id), _encoder.encode(key))

    async def api_key(self, key_id: str) -> ApiKey | None:
        async with unavailable_on_error():
            raw = await self._redis.get(api_key_key(key_id))
        return None if raw is None else _api_key_decoder.decode(raw)

    async def api_keys(self) -> list[ApiKey]:
        async with unavailable_on_error():
            keys = [k async for k in self._redis.scan_iter(match=api_key_key("*"), count=500)]
            raw = await self._redis.mget(keys) if keys else []
        found = [_api_key_decoder.decode(item) for item in raw if item is not None]
        return sorted(found, key=lambda k: k.created_at)

    async def delete_api_key(self, key_id: str) -> bool:
        async with unavailable_on_error():
            return bool(await self._redis.delete(api_key_key(key_id)))
