"""A small FHIR R4 REST client (httpx): reads and searches following `next` links, and
transactions, with an optional bearer token. Every failure is a FhirClientError naming the URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Pages of search results followed at most, so a server cannot keep a request reading forever.
MAX_PAGES = 20
# Seconds: to connect, and to wait for a read or transaction answer.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0
FHIR_JSON = "application/fhir+json"


class FhirClientError(Exception):
    """A FHIR server could not be reached, refused the request, or answered something unusable."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status


def _outcome(response: Any) -> str:
    """The first OperationOutcome diagnostics of an error answer, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome":
        for issue in body.get("issue") or []:
            if isinstance(issue, Mapping) and issue.get("diagnostics"):
                return f" ({str(issue['diagnostics'])[:200]})"
    return ""


def timeouts() -> Any:
    """The timeouts of every outgoing FHIR and SMART request."""
    import httpx

    return httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)


class FhirClient:
    """One FHIR server, optionally with a bearer access token."""

    def __init__(self, base: str, access_token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Accept": FHIR_JSON}
        if access_token:
            self.headers["Authorization"] = f"Bearer {access_token}"

    def _send(self, method: str, url: str, body: Any = None) -> Any:
        import httpx

        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        try:
            with httpx.Client(timeout=timeouts(), headers=headers) as client:
                response = client.request(method, url, json=body)
        except httpx.HTTPError as error:
            raise FhirClientError(url, f"{type(error).__name__}: {error}") from None
        if response.status_code >= 400:
            raise FhirClientError(
                url,
                f"answered HTTP {response.status_code}{_outcome(response)}",
                response.status_code,
            )
        try:
            found = response.json()
        except ValueError:
            raise FhirClientError(url, "the answer is not JSON", response.status_code) from None
        if not isinstance(found, Mapping):
            raise FhirClientError(url, "the answer is not a FHIR resource", response.status_code)
        return found

    def read(self, query: str) -> Any:
        """One read (`Patient/1`) or search (`Observation?...`); a search's pages are joined."""
        url: str | None = f"{self.base}/{query}"
        collected: dict[str, Any] | None = None
        for _ in range(MAX_PAGES):
            if url is None:
                break
            page = self._send("GET", url)
            if page.get("resourceType") != "Bundle":
                return page
            if collected is None:
                collected = dict(page)
                collected["entry"] = list(page.get("entry") or [])
            else:
                collected["entry"].extend(page.get("entry") or [])
            url = next(
                (
                    str(link["url"])
                    for link in page.get("link") or []
                    if isinstance(link, Mapping) and link.get("relation") == "next"
                ),
                None,
            )
        return collected

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle; the transaction-response."""
        answer = self._send("POST", self.base, dict(bundle))
        if answer.get("resourceType") != "Bundle":
            raise FhirClientError(self.base, "the transaction answer is not a Bundle")
        return dict(answer)


def entries(bundle: Any) -> list[Mapping[str, Any]]:
    """The resources of a Bundle's entries that are matches (not included OperationOutcomes)."""
    listed = bundle.get("entry") if isinstance(bundle, Mapping) else None
    if not isinstance(listed, list):
        return []
    return [
        e["resource"]
        for e in listed
        if isinstance(e, Mapping)
        and isinstance(e.get("resource"), Mapping)
        and _search_mode(e.get("search")) == "match"
    ]


def _search_mode(search: Any) -> Any:
    """An entry's search mode; "match" when it says none (or says it in no readable form)."""
    return search.get("mode", "match") if isinstance(search, Mapping) else "match"
