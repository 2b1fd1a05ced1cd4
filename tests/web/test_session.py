"""Signing in to the dashboard: a member token in an HttpOnly cookie, CSRF on every POST."""

from __future__ import annotations

from tests.web.conftest import csrf_of


def test_a_page_asks_to_sign_in_first(web):
    response = web.get("/approvals", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/approvals"


def test_signing_in_with_a_token_opens_the_page_asked_for(acme, web):
    secret = acme.create_token("james.liu").secret
    response = web.post("/signin", data={"token": secret, "next": "/approvals"},
                        follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/approvals"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    page = web.get("/approvals")
    assert page.status_code == 200
    assert "james.liu" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_bad_token_is_refused_and_signs_nobody_in(web):
    response = web.post("/signin", data={"token": "ch_nope_nope"})
    assert response.status_code == 401
    assert "That token was not accepted" in response.text
    assert "set-cookie" not in response.headers
    assert web.get("/", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_off_the_site(acme, web):
    secret = acme.create_token("james.liu").secret
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = web.post("/signin", data={"token": secret, "next": target},
                            follow_redirects=False)
        assert response.headers["location"] == "/"


def test_a_revoked_token_ends_the_session(acme, web):
    made = acme.create_token("james.liu")
    web.post("/signin", data={"token": made.secret})
    assert web.get("/", follow_redirects=False).status_code == 200
    acme.revoke_token(made.token.id, actor="dana.whitfield")
    web.app.state.tokens.forget(made.token.id)
    response = web.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert "why=" in response.headers["location"]


def test_signing_out_needs_the_csrf_token(sign_in, web):
    csrf = sign_in("james.liu")
    assert web.post("/signout", follow_redirects=False).status_code == 403
    response = web.post("/signout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert web.get("/", follow_redirects=False).status_code == 303


def test_a_post_from_another_site_is_refused_even_with_the_token(sign_in, web):
    csrf = sign_in("james.liu")
    response = web.post("/signout", data={"csrf": csrf},
                        headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "may not act on this dashboard" in response.text
    assert web.get("/", follow_redirects=False).status_code == 200


def test_the_overview_shows_members_and_budgets(sign_in, web):
    sign_in("dana.whitfield")
    page = web.get("/")
    assert page.status_code == 200
    assert "buyer-bot-1" in page.text
    assert "tasks queued" in page.text
    live = web.get("/overview/live")
    assert live.status_code == 200
    assert live.text.lstrip().startswith('<div id="overview-live"')
    assert csrf_of(page.text)


def test_static_files_are_served(web):
    assert web.get("/static/htmx-2.0.11.min.js").status_code == 200
    assert web.get("/static/favicon.svg").status_code == 200
