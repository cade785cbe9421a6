"""Cursor pagination: stable under inserts, constant cost at any depth.

Every list pages through here, and its two parameters are checked here, the same way for
every list: a bad ``page_size`` or ``cursor`` is a 400 naming the parameter. DRF alone would
clamp or ignore a bad page size, answer an undecodable cursor with 404, and pass a cursor
that decodes but holds a bad position (not a date, a number out of range) to the database,
which answered with a 500.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from rcm.api.serializers import MAX_PAGE_SIZE, PageQuery

INVALID_CURSOR = "This cursor was not given out by this list; start again without one."


class CreatedCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at", "-pk")

    def paginate_queryset(self, queryset, request, view=None):
        params = {
            name: request.query_params[name]
            for name in PageQuery.PAGE_PARAMETERS
            if name in request.query_params
        }
        PageQuery(data=params).is_valid(raise_exception=True)
        # The cursor's position is a value of the first ordering field: decode_cursor checks
        # it as that field would check it.
        self.position_field = queryset.model._meta.get_field(self.ordering[0].lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            try:
                self.position_field.clean(cursor.position, None)
            except DjangoValidationError:
                raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters
