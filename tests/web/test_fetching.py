"""Getting mail through the web app: jobs, progress, keep or delete, one job per account."""

from __future__ import annotations

from app.store import AccountKey
from tests.web.conftest import csrf_token, fetch_and_wait, log_in, post_form
from tests.web.test_inbox import message


def test_json_fetch_reports_progress_and_result(logged_in, mail_server):
    for n in range(3):
        mail_server.mailboxes.deliver("alice", message(n, f"m{n}"))
    state = fetch_and_wait(logged_in)
    assert state == {"state": "done", "done": 3, "total": 3, "new": 3, "error": None}


def test_browser_fetch_redirects_to_the_inbox_with_progress(logged_in, mail_server):
    mail_server.mailboxes.deliver("alice", message(1, "hello"))
    response = post_form(logged_in, "/fetch", {}, page="/inbox")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/inbox?job=")
    job = location.split("=", 1)[1]
    import time

    for _ in range(200):
        if logged_in.get(f"/fetch/{job}").get_json()["state"] != "running":
            break
        time.sleep(0.05)
    html = logged_in.get(location).get_data(as_text=True)
    assert 'id="fetch-status"' in html and "<progress" in html
    assert "1 new message" in html


def test_keep_on_server_leaves_mail_and_fetches_it_once(logged_in, mail_server):
    mail_server.mailboxes.deliver("alice", message(1, "keep me"))
    assert fetch_and_wait(logged_in)["new"] == 1
    assert fetch_and_wait(logged_in)["new"] == 0
    assert mail_server.mailboxes.count("alice") == 1


def test_download_then_delete_empties_the_server(client, mail_server, app):
    log_in(client, mail_server, keep_on_server="0")
    for n in range(4):
        mail_server.mailboxes.deliver("alice", message(n, f"m{n}"))
    assert fetch_and_wait(client)["new"] == 4
    assert mail_server.mailboxes.count("alice") == 0
    mailbox = app.extensions["pochta.store"].mailbox(
        AccountKey("localhost", mail_server.pop3_port, "alice"))
    assert mailbox.count() == 4


def test_progress_of_another_accounts_job_is_404(client, mail_server, app):
    log_in(client, mail_server)
    job = client.post("/fetch", data={"csrf_token": csrf_token(client, "/inbox")},
                      headers={"Accept": "application/json"}).get_json()["job"]
    other = app.test_client()
    log_in(other, mail_server, "bob")
    assert other.get(f"/fetch/{job}").status_code == 404
    assert client.get(f"/fetch/{job}").status_code == 200


def test_a_second_fetch_follows_the_running_one(logged_in, mail_server, app):
    store = app.extensions["pochta.store"]
    key = AccountKey("localhost", mail_server.pop3_port, "alice")
    running, created = store.start_job(key)
    assert created
    token = csrf_token(logged_in, "/inbox")
    response = logged_in.post("/fetch", data={"csrf_token": token},
                              headers={"Accept": "application/json"})
    assert response.get_json()["job"] == running
    store.finish_job(running)


def test_fetch_failure_is_reported_in_words(logged_in, mail_server):
    mail_server.stop()
    state = fetch_and_wait(logged_in)
    assert state["state"] == "failed"
    assert "Cannot connect to the POP3 server" in state["error"]


def test_fetch_is_not_a_get(logged_in):
    assert logged_in.get("/fetch").status_code == 405


def test_fetch_without_csrf_is_refused(logged_in):
    assert logged_in.post("/fetch").status_code == 400


def test_a_job_whose_worker_died_reads_as_failed_and_a_new_fetch_can_start(
    tmp_path, mail_server
):
    import time

    from app import create_app
    from tests.web.conftest import app_config

    app = create_app(app_config(tmp_path, mail_server, POCHTA_FETCH_STALE_SECONDS="2"))
    client = app.test_client()
    log_in(client, mail_server)
    store = app.extensions["pochta.store"]
    key = AccountKey("localhost", mail_server.pop3_port, "alice")
    orphan, _ = store.start_job(key, stale_after=2)  # its worker never beats: it was killed
    time.sleep(2.2)
    state = client.get(f"/fetch/{orphan}").get_json()
    assert state["state"] == "failed" and state["error"]
    assert fetch_and_wait(client)["state"] == "done"
    store.close()
