"""The embedders: one 768-D unit-vector interface, and a default that tells pages apart by
their structure, not by the patient they show (fixture pages in tests/fixtures/portal/)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from memory.embeddings import (
    DIMENSION,
    EMPTY_PAGE,
    EMPTY_TEXT,
    ST_NO_MODEL,
    ST_NOT_INSTALLED,
    UNKNOWN_EMBEDDER,
    Embedder,
    EmbeddingError,
    HttpEmbedder,
    SentenceTransformerEmbedder,
    StructuralEmbedder,
    embedder,
    embedder_check,
    mask_text,
    page_summary,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "portal"
PORTAL = "https://apps.availity.com/availity/web"
# name: (fixture file, the URL the page was captured at)
PAGES = {
    "login": ("login.html", f"{PORTAL}/public.elegant.login"),
    "patient_search": ("patient_search.html", f"{PORTAL}/eligibility"),
    "eligibility_a": ("eligibility_patient_a.html", f"{PORTAL}/eligibility/results/88231774"),
    "eligibility_b": ("eligibility_patient_b.html", f"{PORTAL}/eligibility/results/88240019"),
    # The portal's redesign also moved the app: another host, another path prefix.
    "eligibility_redesign": (
        "eligibility_redesign.html",
        "https://essentials.availity.com/essentials/eligibility/results/88231774?view=summary",
    ),
    "claim_status": (
        "claim_status.html",
        f"{PORTAL}/claims/status/search?payerId=UHC&claimNumber=24CA1251774",
    ),
    "prior_authorization": (
        "prior_authorization.html",
        f"{PORTAL}/authorizations/requests/AR-2024-1118-5512/services",
    ),
    "benefit_details": (
        "benefit_details.html",
        f"{PORTAL}/eligibility/results/88231774/benefits/98",
    ),
}
SAME_PAGE = {"eligibility_a", "eligibility_b", "eligibility_redesign"}


def page(name: str) -> tuple[str, str]:
    file, url = PAGES[name]
    return (FIXTURES / file).read_text(encoding="utf-8"), url


@pytest.fixture(scope="module")
def similarity() -> dict[tuple[str, str], float]:
    vectors = StructuralEmbedder().embed_pages([page(name) for name in PAGES])
    matrix = vectors @ vectors.T
    names = list(PAGES)
    return {(a, b): float(matrix[i, j]) for i, a in enumerate(names) for j, b in enumerate(names)}


@pytest.fixture
def fresh_embedder_cache():
    embedder.cache_clear()
    yield
    embedder.cache_clear()


# --- quality on realistic portal pages ---


def test_the_same_page_for_another_patient_embeds_almost_identically(similarity):
    assert similarity["eligibility_a", "eligibility_b"] >= 0.9


@pytest.mark.parametrize("patient", ["eligibility_a", "eligibility_b"])
def test_the_same_page_after_a_portal_redesign_is_still_the_same_page(similarity, patient):
    assert similarity[patient, "eligibility_redesign"] >= 0.8


@pytest.mark.parametrize(
    "first, second",
    [pair for pair in itertools.combinations(PAGES, 2) if not set(pair) <= SAME_PAGE],
)
def test_different_pages_are_far_apart(similarity, first, second):
    assert similarity[first, second] < 0.6


# --- the vector contract ---


def test_vectors_are_768_float32_unit_vectors():
    structural = StructuralEmbedder()
    vectors = [
        structural.embed_page(*page("claim_status")),
        structural.embed_text("Claim status for member W123456789"),
        *structural.embed_pages([page("login"), page("patient_search")]),
    ]
    for vector in vectors:
        assert vector.shape == (DIMENSION,)
        assert vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_a_batch_embeds_each_page_as_alone():
    structural = StructuralEmbedder()
    batch = structural.embed_pages([page("login"), page("claim_status")])
    assert batch.shape == (2, DIMENSION)
    assert np.array_equal(batch[1], structural.embed_page(*page("claim_status")))
    assert structural.embed_pages([]).shape == (0, DIMENSION)


def test_the_structural_embedder_is_deterministic_across_processes():
    html, url = page("eligibility_a")
    here = StructuralEmbedder().embed_page(html, url)
    script = (
        "import sys; from memory.embeddings import StructuralEmbedder; "
        "html = open(sys.argv[1], encoding='utf-8').read(); "
        "print(StructuralEmbedder().embed_page(html, sys.argv[2]).tobytes().hex())"
    )
    for seed in ("1", "4242"):
        # hash() differs per PYTHONHASHSEED; the buckets must not.
        result = subprocess.run(
            [sys.executable, "-c", script, str(FIXTURES / PAGES["eligibility_a"][0]), url],
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        there = np.frombuffer(bytes.fromhex(result.stdout.strip()), dtype=np.float32)
        assert np.array_equal(here, there)


def test_dynamic_values_are_masked():
    assert mask_text(
        "Member ID W123456789, DOB 03/14/1986, copay $1,025.00, 20% coinsurance, "
        "call (813) 555-0142 or jane.doe@example.com, received Nov 18, 2024 9:12 AM"
    ) == (
        "member id <id> , dob <date> , copay <money> , <pct> coinsurance, call <phone> or "
        "<email> , received <date> <time>"
    )


def test_page_summary_shows_structure_and_no_patient_data():
    summary = page_summary(*page("eligibility_a"))
    assert "Labels: patient name; member id; date of birth" in summary
    assert "Page: /availity/web/eligibility/results/<id>" in summary
    for value in ("JOHNSON", "EMILY", "XKG884120031", "03/14/1986", "88231774", "1,500"):
        assert value.lower() not in summary.lower()


def test_embed_text_masks_numbers_and_keeps_words():
    structural = StructuralEmbedder()
    first = structural.embed_text("Check claim status for claim 24CA1188203")
    assert np.array_equal(first, structural.embed_text("check claim status for claim 99ZZ0001"))
    other = structural.embed_text("Request a prior authorization")
    assert float(first @ other) < 0.5


@pytest.mark.parametrize(
    "html",
    ["", "   \n", "<html><body><div></div></body></html>", "<script>var a = 1;</script>"],
)
def test_an_empty_page_is_refused(html):
    with pytest.raises(ValueError, match=EMPTY_PAGE):
        StructuralEmbedder().embed_page(html, "https://portal.example.com/home")


@pytest.mark.parametrize("text", ["", "  ", "!!! --"])
def test_an_empty_text_is_refused(text):
    with pytest.raises(ValueError, match=EMPTY_TEXT):
        StructuralEmbedder().embed_text(text)


# --- robustness of the parser ---


def test_scripts_styles_and_comments_do_not_count():
    html, url = page("login")
    noisy = html.replace(
        "<main",
        "<!-- <h1>Old login</h1> <input name='legacy'> -->"
        "<script>document.write('<h2>Claims</h2><input name=\"x\">'); if (a < b) {}</script>"
        "<style>h1:after { content: '<label>Member</label>'; }</style><main",
    )
    structural = StructuralEmbedder()
    assert np.array_equal(structural.embed_page(html, url), structural.embed_page(noisy, url))


def test_malformed_html_embeds_like_the_well_formed_page():
    html, url = page("patient_search")
    # Missing end tags, stray end tags, an unclosed comment at the very end.
    broken = (
        html.replace("</li>", "").replace("</option>", "").replace("</td>", "")
        + "</span></table></form><div><p>unclosed <!-- trailing"
    )
    structural = StructuralEmbedder()
    assert float(structural.embed_page(html, url) @ structural.embed_page(broken, url)) > 0.95


def test_self_closing_skipped_elements_do_not_hide_the_rest_of_the_page():
    html, url = page("login")
    icons = html.replace("<main", '<svg class="icon"/><textarea name="note"/><main')
    summary = page_summary(icons, url)
    assert "Labels: user id; password" in summary
    assert "textarea:note" in summary


def test_a_2_mb_page_embeds_quickly():
    html, url = page("claim_status")
    row = (
        '<tr><td><a href="/availity/web/claims/status/detail/24CA1188203">24CA1188203</a></td>'
        "<td>PA-77812</td><td>10/02/2024</td><td>$325.00</td><td>$188.42</td>"
        "<td>Finalized - Paid</td><td>EFT 004418821</td></tr>\n"
    )
    at = html.index("<tbody>") + len("<tbody>")
    huge = html[:at] + row * (2 * 1024 * 1024 // len(row)) + html[at:]
    assert len(huge.encode()) >= 2 * 1024 * 1024
    structural = StructuralEmbedder()
    # CPU seconds of this process, not wall time: a busy machine (a CI neighbour, two cores
    # shared) stretches the wall clock, not the work; what is guarded is that embedding stays
    # linear in the page, where a quadratic step would take minutes of CPU on 2 MB.
    started = time.process_time()
    vector = structural.embed_page(huge, url)
    assert time.process_time() - started < 3.0
    # Thousands more rows of claims: still the claim status page.
    assert float(vector @ structural.embed_page(html, url)) > 0.95


# --- padding a smaller model to 768 ---


class FakeTextModel(Embedder):
    """A deterministic 384-D "model": a pseudo-random vector per word, summed."""

    model_id = "fake-384"
    native_dimension = 384

    def _embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        return [raw_384(text) for text in texts]


def raw_384(text: str) -> np.ndarray:
    vector = np.zeros(384)
    for word in text.lower().split():
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
        vector += np.random.default_rng(seed).standard_normal(384)
    return vector


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_padding_to_768_keeps_cosine_similarity_exact():
    model = FakeTextModel()
    first, second = "eligibility and benefits results", "eligibility inquiry results page"
    padded_first, padded_second = model.embed_text(first), model.embed_text(second)
    assert padded_first.shape == (DIMENSION,)
    assert not padded_first[384:].any()
    assert float(padded_first @ padded_second) == pytest.approx(
        cosine(raw_384(first), raw_384(second)), abs=1e-6
    )


def test_a_text_model_embeds_a_page_through_its_summary():
    model = FakeTextModel()
    html, url = page("claim_status")
    assert np.array_equal(model.embed_page(html, url), model.embed_text(page_summary(html, url)))


class BrokenModel(FakeTextModel):
    def _embed_texts(self, texts: list[str]) -> list[list[float]]:
        return [[0.0] * 384 for _ in texts]


def test_a_zero_vector_from_a_model_is_an_error_not_a_division_by_zero():
    with pytest.raises(EmbeddingError, match="all zeros"):
        BrokenModel().embed_text("anything")


# --- the HTTP embedder against a real local server ---


class EmbeddingService:
    """An OpenAI-compatible /embeddings endpoint on a local port, answering with `mode`."""

    def __init__(self):
        self.requests: list[tuple[dict, str]] = []
        self.mode = "ok"
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.requests.append((body, self.headers.get("Authorization", "")))
                status, answer = service.answer(self.path, body["input"])
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, texts: list[str]) -> tuple[int, dict]:
        if path != "/v1/embeddings" or self.mode == "error":
            return 500, {"error": "boom"}
        size = 383 if self.mode == "wrong_dimension" else 384
        data = [
            {"index": i, "embedding": raw_384(text)[:size].tolist()} for i, text in enumerate(texts)
        ]
        if self.mode == "not_finite":
            data[0]["embedding"][0] = float("nan")
        # Out of order, as a service may answer: the index puts them back.
        return 200, {"object": "list", "data": data[::-1], "model": "nomic-embed-text"}


@pytest.fixture
def service():
    service = EmbeddingService()
    yield service
    service.server.shutdown()
    service.server.server_close()


def http_embedder(service: EmbeddingService, **overrides) -> HttpEmbedder:
    options = {
        "url": service.url,
        "model": "nomic-embed-text",
        "api_key": "sk-local-test",
        "dimension": 384,
        "timeout_s": 5.0,
    }
    return HttpEmbedder(**{**options, **overrides})


def test_the_http_embedder_pads_the_service_vectors(service):
    http = http_embedder(service)
    vectors = http.embed_pages([page("login"), page("claim_status")])
    assert vectors.shape == (2, DIMENSION)
    assert not vectors[:, 384:].any()
    summaries = [page_summary(*page("login")), page_summary(*page("claim_status"))]
    expected = cosine(raw_384(summaries[0]), raw_384(summaries[1]))
    assert float(vectors[0] @ vectors[1]) == pytest.approx(expected, abs=1e-6)
    body, authorization = service.requests[0]
    assert body == {"model": "nomic-embed-text", "input": summaries}
    assert authorization == "Bearer sk-local-test"
    assert http.model_id.startswith("http:nomic-embed-text")


def test_the_http_embedder_sends_large_batches_in_parts(service):
    http_embedder(service).embed_pages([page("login")] * 70)
    assert [len(body["input"]) for body, _ in service.requests] == [64, 6]


@pytest.mark.parametrize(
    "mode, message",
    [
        ("wrong_dimension", "an embedding has 383 values, expected 384"),
        ("not_finite", "not finite numbers"),
        ("error", "answered HTTP 500"),
    ],
)
def test_a_bad_answer_from_the_service_is_an_embedding_error(service, mode, message):
    service.mode = mode
    with pytest.raises(EmbeddingError, match=message):
        http_embedder(service).embed_text("eligibility")


def test_an_unreachable_service_is_an_embedding_error(service):
    url = service.url
    service.server.shutdown()
    service.server.server_close()
    with pytest.raises(EmbeddingError, match="could not be reached"):
        http_embedder(service, url=url, timeout_s=1.0).embed_text("eligibility")


@pytest.mark.parametrize("dimension", [0, 769, 1024])
def test_a_dimension_outside_1_to_768_is_a_start_up_error(service, dimension):
    with pytest.raises(ImproperlyConfigured, match="between 1 and 768"):
        http_embedder(service, dimension=dimension)


# --- the configured embedder ---


def test_the_default_embedder_is_structural_and_built_once(fresh_embedder_cache):
    assert isinstance(embedder(), StructuralEmbedder)
    assert embedder() is embedder()
    assert embedder().model_id == "structural-v1"


def test_an_unknown_embedder_is_a_start_up_error(fresh_embedder_cache):
    expected = UNKNOWN_EMBEDDER.format(
        allowed="structural, sentence-transformers, http", name="word2vec"
    )
    with (
        override_settings(MEMORY_EMBEDDER="word2vec"),
        pytest.raises(ImproperlyConfigured) as error,
    ):
        embedder_check()
    assert str(error.value) == expected


def test_the_http_embedder_comes_from_settings(fresh_embedder_cache, service):
    with override_settings(
        MEMORY_EMBEDDER="http",
        MEMORY_EMBEDDER_URL=service.url,
        MEMORY_EMBEDDER_MODEL="nomic-embed-text",
        MEMORY_EMBEDDER_DIMENSION=384,
    ):
        configured = embedder()
    assert isinstance(configured, HttpEmbedder)
    assert configured.native_dimension == 384
    assert configured.embed_text("claim status").shape == (DIMENSION,)


def test_the_http_embedder_needs_a_url(fresh_embedder_cache):
    with (
        override_settings(MEMORY_EMBEDDER="http", MEMORY_EMBEDDER_URL=""),
        pytest.raises(ImproperlyConfigured, match="MEMORY_EMBEDDER_URL"),
    ):
        embedder_check()


def test_sentence_transformers_missing_is_a_start_up_error(monkeypatch, fresh_embedder_cache):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    settings = {
        "MEMORY_EMBEDDER": "sentence-transformers",
        "MEMORY_EMBEDDER_MODEL": "all-MiniLM-L6-v2",
    }
    with override_settings(**settings), pytest.raises(ImproperlyConfigured) as error:
        embedder_check()
    assert str(error.value) == ST_NOT_INSTALLED


def test_sentence_transformers_needs_a_model_name():
    with pytest.raises(ImproperlyConfigured) as error:
        SentenceTransformerEmbedder("")
    assert str(error.value) == ST_NO_MODEL


def test_sentence_transformers_never_downloads_a_model(monkeypatch):
    pytest.importorskip("sentence_transformers")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="never downloaded"):
        SentenceTransformerEmbedder("sentence-transformers/a-model-that-is-not-cached")


def fake_sentence_transformers(dimension: int) -> types.ModuleType:
    """Stands in for the package (not installed here): records how the model was loaded."""
    module = types.ModuleType("sentence_transformers")

    class SentenceTransformer:
        def __init__(self, name, **options):
            module.loaded = (name, options, os.environ.get("HF_HUB_OFFLINE"))

        def get_sentence_embedding_dimension(self):
            return dimension

        def encode(self, texts, **options):
            return np.stack([raw_384(text)[:dimension] for text in texts])

    module.SentenceTransformer = SentenceTransformer
    return module


def test_sentence_transformers_loads_offline_and_pads(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    module = fake_sentence_transformers(384)
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert module.loaded == ("all-MiniLM-L6-v2", {"local_files_only": True}, "1")
    assert model.model_id.startswith("st:all-MiniLM-L6-v2")
    vector = model.embed_page(*page("prior_authorization"))
    assert vector.shape == (DIMENSION,)
    assert not vector[384:].any()


def test_a_sentence_transformers_model_over_768_dimensions_is_a_start_up_error(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake_sentence_transformers(1024))
    with pytest.raises(ImproperlyConfigured, match="1024 dimensions"):
        SentenceTransformerEmbedder("bge-large-en")
