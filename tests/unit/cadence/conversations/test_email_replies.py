"""Email replies as SES stores them: the sender, the words above the quoted campaign, automatic mail told apart from
people by its headers, and the run named by the reply address."""

import pytest

from cadence.conversations import email_replies


def mime(body: str, *, headers: str = "", content_type: str = "text/plain; charset=utf-8", to: str = "") -> bytes:
    to = to or "reply@replies.example.com"
    return (
        f"From: Wang Li <Customer@Example.com>\r\nTo: {to}\r\nSubject: Re: We miss you\r\n"
        f"Message-ID: <CAEXAMPLE1@mail.example.com>\r\nIn-Reply-To: <0100018c-ses-id@email.amazonses.com>\r\n"
        f"{headers}MIME-Version: 1.0\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    ).encode()


def test_the_sender_the_reply_and_the_message_it_answers_are_read() -> None:
    body = (
        "Where is my order 1234?\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Cadence <news@example.com> wrote:\r\n"
        "> We miss you"
    )

    parsed = email_replies.parse(mime(body))

    assert parsed.sender == "customer@example.com"
    assert parsed.text == "Where is my order 1234?"
    assert parsed.in_reply_to == "0100018c-ses-id@email.amazonses.com"
    assert parsed.recipients == ("reply@replies.example.com",)
    assert parsed.automatic is None


@pytest.mark.parametrize(
    "body",
    [
        "退订\r\n\r\n在 2026年11月23日 10:00\uff0cCadence <news@example.com> 写道\uff1a\r\n> 我们想念您",
        "退订\r\n\r\n-----原始邮件-----\r\n发件人: news@example.com",
        "退订\r\n> quoted line\r\n",
    ],
)
def test_the_quoted_campaign_is_left_out_in_chinese_clients_too(body: str) -> None:
    assert email_replies.parse(mime(body)).text == "退订"


def test_an_html_only_reply_is_read_as_text_without_the_quote() -> None:
    html = "<div>Coupon SAVE20 does not work<br></div><blockquote>We miss you</blockquote>"

    parsed = email_replies.parse(mime(html, content_type="text/html; charset=utf-8"))

    assert parsed.text == "Coupon SAVE20 does not work"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ("Auto-Submitted: auto-replied\r\n", "auto_submitted"),
        ("X-Autoreply: yes\r\n", "x_autoreply"),
        ("Precedence: auto_reply\r\n", "precedence_bulk"),
        ("Precedence: bulk\r\n", "precedence_bulk"),
        ("Return-Path: <>\r\n", "null_return_path"),
    ],
)
def test_automatic_replies_are_told_apart_from_people(headers: str, why: str) -> None:
    assert email_replies.parse(mime("I am out of the office until Monday.", headers=headers)).automatic == why


def test_a_person_saying_auto_submitted_no_is_a_person() -> None:
    assert email_replies.parse(mime("Thanks!", headers="Auto-Submitted: no\r\n")).automatic is None


def test_a_delivery_report_is_automatic() -> None:
    report = mime("--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n--b--\r\n",
                  content_type='multipart/report; report-type=delivery-status; boundary="b"')  # fmt: skip
    assert email_replies.parse(report).automatic == "delivery_report"


def test_a_message_without_a_sender_is_refused() -> None:
    with pytest.raises(ValueError, match="no From address"):
        email_replies.parse(b"To: reply@replies.example.com\r\nSubject: hi\r\n\r\nhello")


def test_a_run_s_reply_address_names_the_run_whatever_the_case() -> None:
    run_id = "winback@2026-11-23T02:00:00Z"
    address = email_replies.reply_address("replies.example.com", run_id)
    assert address is not None

    assert email_replies.run_of((address,), "replies.example.com") == run_id
    assert email_replies.run_of((address.upper(),), "Replies.Example.com") == run_id
    assert email_replies.run_of(("other@example.com", address), "replies.example.com") == run_id
    assert email_replies.run_of(("reply@replies.example.com",), "replies.example.com") is None
    assert email_replies.run_of((address,), "elsewhere.example.com") is None


def test_a_run_id_too_long_for_an_address_gets_none() -> None:
    assert email_replies.reply_address("replies.example.com", "c" * 40 + "@2026-11-23T02:00:00Z") is None
