"""OpenAPI descriptions of the two ways to authenticate (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class OrgJWTScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.OrgJWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from /api/v2/auth/token/; it carries org_id and role.",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, for api_user members.",
        }
