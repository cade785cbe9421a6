"""The console's template helpers: ``{% console_may "batch_job" "add" as may_upload %}`` shows a
link only to the roles its page lets in (console.access.may, the route's own question);
``{{ job.status_id|words }}`` shows a stored value as words ("partially completed")."""

from django import template

from console.access import may

register = template.Library()


@register.simple_tag(takes_context=True)
def console_may(context, resource: str, action: str) -> bool:
    request = context.get("request")
    return request is not None and may(request, resource, action)


@register.filter
def words(value) -> str:
    """A stored code as people read it: ``partially_completed`` → ``partially completed``."""
    return str(value).replace("_", " ")
