"""Renderers beside JSON, for the few views that answer in another format themselves."""

from rest_framework import renderers


class CsvRenderer(renderers.BaseRenderer):
    """Lets a client that asks for ``text/csv`` (Swagger UI's "Try it out", ``curl -H 'Accept:
    text/csv'``) reach a view that streams its CSV itself, instead of a 406 from content
    negotiation. It never renders a body of its own: what a DRF response carries here is an
    error, and errors are JSON whatever the client accepts (OrgScopedAPIView.finalize_response).
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return renderers.JSONRenderer().render(data, accepted_media_type, renderer_context)
