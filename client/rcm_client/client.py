"""``Client``: the v2 API as Python calls.

    with Client("https://rcm.example.org", email="ops@example.org", password=...) as rcm:
        job = rcm.upload_batch("patients.csv", workflow=workflow_id, wait=True)
        rcm.save_batch_results(job.id, "results.csv")

Every request goes through ``_request``: it signs the request (renewing the access token
before it expires), retries what is safe to retry, and turns an error answer into an
exception from rcm_client.errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from rcm_client._version import __version__
from rcm_client.auth import TokenPair
from rcm_client.errors import (
    AuthenticationError,
    RcmConnectionError,
    error_from_response,
)
from rcm_client.models import (
    ApiObject,
    BatchItem,
    BatchJob,
    Endpoint,
    MicroState,
    Organization,
    Revision,
    Run,
    WebAction,
    Workflow,
)
from rcm_client.retry import RETRY_STATUSES, RetryPolicy

API = "api/v2/"
DEFAULT_TIMEOUT_S = 30.0
# Polling a job or run: quickly at first (short ones end in a second), then every
# ``poll_interval`` seconds (a long batch is not worth more than one request per interval).
FIRST_POLL_S = 0.1
POLL_GROWTH = 1.5

NOT_LOGGED_IN = "No credentials: give email and password, a refresh token or an API key."

Model = TypeVar("Model", bound=ApiObject)
FileInput = str | os.PathLike | bytes | IO[bytes]


def _id(value) -> str:
    """An object or its id, as the path segment."""
    return str(getattr(value, "id", value))


def _query(**params) -> dict[str, str]:
    """Query parameters without the ones not given, in the API's spelling."""
    query = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, datetime):
            value = value.isoformat()
        else:
            value = _id(value)  # a Workflow for ?workflow=, as well as its id
        query[name] = str(value)
    return query


def _api_path(url: str) -> str:
    """A ``next`` link as a path under the client's base URL. The server builds it from the
    Host it saw, which behind a proxy is not the address this client uses."""
    parsed = httpx.URL(url)
    path = parsed.raw_path.decode("ascii")
    _, found, rest = path.partition("/" + API)
    return API + rest if found else path.lstrip("/")


class Client:
    """A session with the platform, for one organization at a time.

    Credentials: ``email`` and ``password`` (logs in on first use, renews the access token
    before it expires and logs in again if the refresh token is refused), a ``refresh_token``
    from an earlier log-in (``rcm login`` keeps one), or an ``api_key`` (api_user members).

    ``timeout``: seconds (or an ``httpx.Timeout``) for each request. ``retry``: how requests
    that are safe to repeat are retried (``RetryPolicy(attempts=1)``: never).
    ``poll_interval``: the longest wait between two looks at a job or run being waited for.
    ``transport``: an ``httpx`` transport (a proxy mount, a recording wrapper).
    """

    def __init__(
        self,
        url: str,
        *,
        email: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        refresh_token: str | None = None,
        org_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        poll_interval: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
    ):
        if api_key and (email or password or refresh_token):
            raise ValueError("Give an API key or a user's credentials, not both.")
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self._http = httpx.Client(
            base_url=self.url + "/",
            timeout=timeout,
            transport=transport,
            verify=verify,
            headers={"User-Agent": f"rcm-client/{__version__}", "Accept": "application/json"},
        )
        self._email, self._password, self._api_key = email, password, api_key
        self._org_id = str(org_id) if org_id else None
        self._refresh = refresh_token
        self._tokens: TokenPair | None = None
        # One renewal at a time: threads sharing a client would otherwise each spend the
        # refresh token and log in again together.
        self._auth_lock = threading.Lock()

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- authentication ---------------------------------------------------------------------

    @property
    def org_id(self) -> str | None:
        """The organization the client acts in (known after the first request with a JWT)."""
        return self._tokens.org_id if self._tokens else self._org_id

    @property
    def role(self) -> str | None:
        return self._tokens.role if self._tokens else None

    @property
    def refresh_token(self) -> str | None:
        """The newest refresh token, to keep for the next session (``rcm login`` does)."""
        return self._tokens.refresh if self._tokens else self._refresh

    def login(
        self, email: str | None = None, password: str | None = None, *, org_id=None
    ) -> TokenPair:
        """Log in now (a client with a password also logs in by itself when it needs to);
        ``org_id``: an organization other than your primary one."""
        self._email = email or self._email
        self._password = password or self._password
        if org_id is not None:
            self._org_id = _id(org_id)
        if not (self._email and self._password):
            raise AuthenticationError(NOT_LOGGED_IN, code="not_authenticated")
        body = {"email": self._email, "password": self._password}
        if self._org_id:
            body["org_id"] = self._org_id
        return self._store(self._token_request("auth/token/", body))

    def switch_org(self, org_id) -> TokenPair:
        """Act in another organization you are a member of (``403 not_a_member`` otherwise);
        user tokens only."""
        response = self._request("POST", API + "auth/switch-org/", json={"org_id": _id(org_id)})
        tokens = self._store(response.json())
        self._org_id = tokens.org_id
        return tokens

    def _store(self, data: dict) -> TokenPair:
        self._tokens = TokenPair.from_api(data)
        self._refresh = self._tokens.refresh
        return self._tokens

    def _token_request(self, path: str, body: dict) -> dict:
        # Log-in and refresh create nothing but a token pair: safe to send again.
        return self._request(
            "POST", API + path, json=body, authenticated=False, retry_safe=True
        ).json()

    def _authorization(self, *, renew: bool = False) -> str:
        if self._api_key:
            return f"Api-Key {self._api_key}"
        tokens = self._tokens
        if tokens is None or renew or tokens.due():
            with self._auth_lock:
                # Another thread may have renewed while this one waited for the lock.
                tokens = self._renew() if self._tokens is tokens else self._tokens
        return f"Bearer {tokens.access}"

    def _renew(self) -> TokenPair:
        """A fresh pair: from the refresh token, else (refused: expired, or the server's key
        changed) by logging in again."""
        if self._refresh:
            body = {"refresh": self._refresh}
            try:
                return self._store(self._token_request("auth/token/refresh/", body))
            except AuthenticationError:
                if not self._password:
                    raise
        if self._password:
            return self.login()
        raise AuthenticationError(NOT_LOGGED_IN, code="not_authenticated")

    # -- the one way a request is sent --------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Callable[[], dict] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        retry_safe: bool | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send, retrying on 429, 5xx and lost connections only when it is safe: a GET, or a
        request whose repetition the server recognises (an ``Idempotency-Key``). ``files``
        builds the multipart files anew for each attempt (a retry re-reads the file).
        ``stream``: the successful response is returned unread (close it)."""
        headers = dict(headers or {})
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if retry_safe is None:
            retry_safe = method in ("GET", "HEAD") or idempotency_key is not None
        renewed = False
        attempt = 0
        while True:
            if authenticated:
                headers["Authorization"] = self._authorization()
            request = self._http.build_request(
                method, path, params=params, json=json, data=data,
                files=files() if files else None, headers=headers,
            )  # fmt: skip
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, None) if retry_safe else None
                if delay is None:
                    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    raise RcmConnectionError(
                        f"No answer from {self.url}: {message}", code="connection_error"
                    ) from exc
            else:
                if response.status_code < 400:
                    return response
                if stream:
                    response.read()
                if (
                    response.status_code == 401
                    and authenticated
                    and not renewed
                    and not self._api_key
                    and (self._refresh or self._password)
                ):
                    # The server refused a token the client thought valid (its clock is
                    # behind, or the server's key changed): a 401 did nothing, so renewing
                    # and sending again is safe for any request.
                    renewed = True
                    self._authorization(renew=True)
                    continue
                delay = None
                if retry_safe and response.status_code in RETRY_STATUSES:
                    delay = self.retry.delay(attempt, response)
                if delay is None:
                    raise error_from_response(response)
            attempt += 1
            time.sleep(delay)

    def _get(self, path: str, **params) -> Any:
        return self._request("GET", API + path, params=_query(**params)).json()

    def _create(self, path: str, *, idempotency_key: str | None = None, **options) -> Any:
        """A POST that creates or changes something, with an Idempotency-Key (its own, or a
        new one) that every retry of it repeats: the server does it once."""
        key = idempotency_key or str(uuid.uuid4())
        return self._request("POST", API + path, idempotency_key=key, **options).json()

    def iterate(self, path: str, model: type[Model], **params) -> Iterator[Model]:
        """Every object of a list, page after page, following the cursor ``next`` links.
        ``page_size`` (1–200) sets how many each request brings."""
        url, query = API + path, _query(**params)
        while url:
            page = self._request("GET", url, params=query).json()
            for item in page["results"]:
                yield model.from_api(item)
            url = _api_path(page["next"]) if page.get("next") else None
            query = None  # the next link carries every parameter

    # -- organization and endpoints -------------------------------------------------------

    def current_organization(self) -> Organization:
        return Organization.from_api(self._get("organizations/current/"))

    def endpoints(self, *, page_size: int | None = None) -> Iterator[Endpoint]:
        return self.iterate("endpoints/", Endpoint, page_size=page_size)

    def endpoint(self, endpoint_id) -> Endpoint:
        return Endpoint.from_api(self._get(f"endpoints/{_id(endpoint_id)}/"))

    # -- workflows and runs ---------------------------------------------------------------

    def workflows(
        self, *, status: str | None = None, page_size: int | None = None
    ) -> Iterator[Workflow]:
        return self.iterate("workflows/", Workflow, status=status, page_size=page_size)

    def workflow(self, workflow_id) -> Workflow:
        """One workflow, with its draft ``nodes`` and ``transitions``."""
        return Workflow.from_api(self._get(f"workflows/{_id(workflow_id)}/"))

    def revisions(self, workflow, *, page_size: int | None = None) -> Iterator[Revision]:
        return self.iterate(f"workflows/{_id(workflow)}/revisions/", Revision, page_size=page_size)

    def revision(self, workflow, revision_num: int) -> Revision:
        """One revision with its frozen ``graph``."""
        return Revision.from_api(self._get(f"workflows/{_id(workflow)}/revisions/{revision_num}/"))

    def runs(
        self,
        *,
        status: str | None = None,
        workflow=None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Run]:
        """Runs, newest first."""
        return self.iterate(
            "runs/", Run, status=status, workflow=workflow, since=since, until=until,
            page_size=page_size,
        )  # fmt: skip

    def run(self, run_id) -> Run:
        """One run, with its ``context`` and ``nodes``."""
        return Run.from_api(self._get(f"runs/{_id(run_id)}/"))

    def run_workflow(
        self,
        workflow,
        *,
        input: Mapping[str, Any],
        external_id: str | None = None,
        timeout_s: int | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Start a run of ``workflow`` (an id or a Workflow) on one ``input`` row. ``wait``:
        return once it has ended (at most ``wait_timeout`` seconds, then TimeoutError).
        ``idempotency_key``: yours, to make starting safe to repeat across processes (the
        server answers the same run for 24 hours); ``external_id`` is the lasting kind."""
        body: dict[str, Any] = {"input": dict(input)}
        if external_id is not None:
            body["external_id"] = external_id
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        path = f"workflows/{_id(workflow)}/runs/"
        run = Run.from_api(self._create(path, json=body, idempotency_key=idempotency_key))
        return self.wait_for_run(run.id, timeout=wait_timeout) if wait else run

    def wait_for_run(self, run_id, *, timeout: float | None = None) -> Run:
        return self._poll(lambda: self.run(run_id), lambda run: run.finished, timeout, None)

    def cancel_run(self, run_id) -> Run:
        return Run.from_api(self._create(f"runs/{_id(run_id)}/cancel/"))

    # -- batch jobs -----------------------------------------------------------------------

    def batch_jobs(
        self,
        *,
        status: str | None = None,
        workflow=None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[BatchJob]:
        """Batch jobs, newest first."""
        return self.iterate(
            "batch-jobs/", BatchJob, status=status, workflow=workflow, since=since, until=until,
            page_size=page_size,
        )  # fmt: skip

    def batch_job(self, job_id) -> BatchJob:
        return BatchJob.from_api(self._get(f"batch-jobs/{_id(job_id)}/"))

    def batch_items(
        self, job_id, *, status: str | None = None, page_size: int | None = None
    ) -> Iterator[BatchItem]:
        """The job's rows in file order; ``status="failed"``: the rows that failed."""
        return self.iterate(
            f"batch-jobs/{_id(job_id)}/items/", BatchItem, status=status, page_size=page_size
        )

    def upload_batch(
        self,
        file: FileInput,
        *,
        workflow,
        filename: str | None = None,
        column_map: Mapping[str, str] | None = None,
        on_invalid: str | None = None,
        max_concurrency: int | None = None,
        prompt: str | None = None,
        wait: bool = False,
        on_progress: Callable[[BatchJob], None] | None = None,
        wait_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> BatchJob:
        """Upload a CSV or .xlsx file (a path, bytes or a binary file object) as a batch job
        of ``workflow``. ``on_invalid="skip"`` runs the valid rows and fails the others
        (default: any invalid row refuses the upload, 400 ``invalid_rows``). ``wait``: return
        once every row has ended, calling ``on_progress(job)`` whenever its counts move."""
        fields = {"workflow": _id(workflow)}
        for name, value in (
            ("on_invalid", on_invalid), ("max_concurrency", max_concurrency), ("prompt", prompt),
        ):  # fmt: skip
            if value is not None:
                fields[name] = str(value)
        if column_map is not None:
            fields["column_map"] = json.dumps(dict(column_map))
        with _file_part(file, filename) as files:
            created = self._create(
                "batch-jobs/", data=fields, files=files, idempotency_key=idempotency_key
            )
        job = BatchJob.from_api(created)
        if not wait:
            return job
        return self.wait_for_batch(job.id, on_progress=on_progress, timeout=wait_timeout)

    def upload_rows(
        self,
        rows: list[Mapping[str, Any]],
        *,
        workflow,
        on_invalid: str | None = None,
        max_concurrency: int | None = None,
        prompt: str | None = None,
        idempotency_key: str | None = None,
    ) -> BatchJob:
        """A batch job from rows already in memory (a JSON body: up to 2.5 MB)."""
        body: dict[str, Any] = {"workflow": _id(workflow), "rows": [dict(row) for row in rows]}
        for name, value in (
            ("on_invalid", on_invalid), ("max_concurrency", max_concurrency), ("prompt", prompt),
        ):  # fmt: skip
            if value is not None:
                body[name] = value
        return BatchJob.from_api(
            self._create("batch-jobs/", json=body, idempotency_key=idempotency_key)
        )

    def wait_for_batch(
        self,
        job_id,
        *,
        on_progress: Callable[[BatchJob], None] | None = None,
        timeout: float | None = None,
    ) -> BatchJob:
        """The job once every row has ended; ``on_progress(job)`` at the start and whenever
        its status or counts change, the last time with the finished job."""
        return self._poll(
            lambda: self.batch_job(job_id), lambda job: job.finished, timeout, on_progress
        )

    def batch_results(self, job_id) -> str:
        """results.csv as text (without the byte-order mark the file carries for Excel)."""
        response = self._request(
            "GET", API + f"batch-jobs/{_id(job_id)}/results.csv", headers={"Accept": "text/csv"}
        )
        return response.content.decode("utf-8-sig")

    def save_batch_results(self, job_id, path: str | os.PathLike) -> Path:
        """results.csv, streamed into ``path`` as the server sends it (UTF-8 with BOM)."""
        path = Path(path)
        response = self._request(
            "GET", API + f"batch-jobs/{_id(job_id)}/results.csv",
            headers={"Accept": "text/csv"}, stream=True,
        )  # fmt: skip
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as output:
                for chunk in response.iter_bytes():
                    output.write(chunk)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise RcmConnectionError(
                f"The download was cut off: {exc}", code="connection_error"
            ) from exc
        finally:
            response.close()
        # A complete file or none: a cut download never sits where the results belong.
        partial.replace(path)
        return path

    def cancel_batch(self, job_id) -> BatchJob:
        """Pending rows are cancelled; running rows finish (``409 job_finished`` if ended)."""
        return BatchJob.from_api(self._create(f"batch-jobs/{_id(job_id)}/cancel/"))

    def retry_failed(self, job_id) -> BatchJob:
        """Rows that failed in a run go back to pending (``409 nothing_to_retry`` if none)."""
        return BatchJob.from_api(self._create(f"batch-jobs/{_id(job_id)}/retry-failed/"))

    # -- memory and web actions -----------------------------------------------------------

    def micro_states(
        self,
        *,
        workflow=None,
        node: int | None = None,
        endpoint=None,
        is_retired: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        include_embedding: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[MicroState]:
        return self.iterate(
            "micro-states/", MicroState, workflow=workflow, node=node, endpoint=endpoint,
            is_retired=is_retired, since=since, until=until,
            include_embedding=include_embedding, page_size=page_size,
        )  # fmt: skip

    def micro_state(self, state_id, *, include_embedding: bool | None = None) -> MicroState:
        return MicroState.from_api(
            self._get(f"micro-states/{_id(state_id)}/", include_embedding=include_embedding)
        )

    def web_actions(
        self, *, status: str | None = None, page_size: int | None = None
    ) -> Iterator[WebAction]:
        return self.iterate("web-actions/", WebAction, status=status, page_size=page_size)

    def web_action(self, web_action_id) -> WebAction:
        """One web action with its actions, outputs, results and screenshots."""
        return WebAction.from_api(self._get(f"web-actions/{_id(web_action_id)}/"))

    # -- waiting --------------------------------------------------------------------------

    def _poll(self, fetch, done, timeout: float | None, on_change):
        deadline = None if timeout is None else time.monotonic() + timeout
        interval, seen = FIRST_POLL_S, None
        while True:
            current = fetch()
            state = _progress_state(current)
            if on_change is not None and state != seen:
                on_change(current)
            seen = state
            if done(current):
                return current
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"Still {current.status} after {timeout} s.")
            time.sleep(interval)
            interval = min(self.poll_interval, interval * POLL_GROWTH)


def _progress_state(obj) -> tuple:
    counts = ("status", "processed_rows", "successful_rows", "failed_rows", "cancelled_rows")
    return tuple(getattr(obj, name, None) for name in counts)


@contextlib.contextmanager
def _file_part(file: FileInput, filename: str | None) -> Iterator[Callable[[], dict]]:
    """The multipart ``file`` part, built again for each attempt: a retry must send the same
    bytes (the server compares them with the first attempt's under the Idempotency-Key). A
    path is opened here and closed after the last attempt; a file object is rewound to where
    it stood."""
    if isinstance(file, bytes):
        name = filename or "upload.csv"
        yield lambda: {"file": (name, file)}
        return
    with contextlib.ExitStack() as stack:
        if isinstance(file, str | os.PathLike):
            handle = stack.enter_context(Path(file).open("rb"))
        else:
            handle = file
        name = filename or Path(getattr(handle, "name", None) or "upload.csv").name
        start = handle.tell()

        def part() -> dict:
            handle.seek(start)
            return {"file": (name, handle)}

        yield part
