"""The service's endpoint URLs, all derived from the issuer identifier (never from the Host
header), so DPoP ``htu`` and assertion audiences are compared against configured values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoints:
    issuer: str

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def par(self) -> str:
        return self.url("/par")

    @property
    def authorize(self) -> str:
        return self.url("/authorize")

    @property
    def token(self) -> str:
        return self.url("/token")

    @property
    def userinfo(self) -> str:
        return self.url("/userinfo")

    @property
    def introspection(self) -> str:
        return self.url("/introspect")

    @property
    def revocation(self) -> str:
        return self.url("/revoke")

    @property
    def jwks(self) -> str:
        return self.url("/jwks")

    @property
    def wallet_response(self) -> str:
        return self.url("/wallet/response")

    def wallet_request(self, transaction_id: str) -> str:
        return self.url(f"/wallet/request/{transaction_id}")

    def authorization_details_schema(self, type_name: str) -> str:
        """Where the JSON Schema of an authorization_details type is served."""
        return self.url(f"/schemas/{type_name}.json")

    def interaction(self, interaction_id: str) -> str:
        return self.url(f"/interaction/{interaction_id}")

    @property
    def resource(self) -> str:
        """The default audience of access tokens (our own userinfo and the ecosystem's RS)."""
        return self.url("/resource")
