"""What OPTIONS answers on every API view.

DRF's SimpleMetadata describes a view's body through ``get_serializer()``, which our views do
not have: they name an input serializer per method (STYLE §3), so OPTIONS was a 500 on every
view that takes a body. The schema (/api/v2/schema/) is where bodies are described; OPTIONS
says which methods the route allows, and what it reads and writes.
"""

from rest_framework.metadata import BaseMetadata


class AllowedMethodsMetadata(BaseMetadata):
    def determine_metadata(self, request, view) -> dict:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "methods": view.allowed_methods,
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
