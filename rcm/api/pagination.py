"""Cursor pagination: stable under inserts, constant cost at any depth."""

from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-pk")
