import pytest

from cadence.conversations.keywords import Keyword, keyword_of


@pytest.mark.parametrize(
    ("reply", "keyword"),
    [
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        ("Stop please", Keyword.STOP),
        ("\uff33\uff34\uff2f\uff30", Keyword.STOP),  # full-width STOP, as a Chinese keyboard types it
        ("  unsubscribe! ", Keyword.STOP),
        ("退订", Keyword.STOP),
        ("退订。", Keyword.STOP),
        ("TD", Keyword.STOP),
        ("退订 谢谢", Keyword.STOP),
        ("Cancel", Keyword.STOP),
        ("END.", Keyword.STOP),
        ("\uff54\uff44", Keyword.STOP),
        ("START", Keyword.START),
        ("订阅", Keyword.START),
        ("help", Keyword.HELP),
        ("帮助\uff1f", Keyword.HELP),  # a full-width question mark
        ("\uff28\uff25\uff2c\uff30", Keyword.HELP),
    ],
)
def test_each_keyword_is_recognised_whatever_its_case_width_or_punctuation(reply: str, keyword: Keyword) -> None:
    assert keyword_of(reply) == keyword


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   ",
        "!!",
        "cancel my order",
        "end of the sale?",
        "help me find my order",
        "where is my order?",
        "please don't stop",
        "stopping by tomorrow",
        "我的订单在哪里",
        "订阅号是什么",
    ],
)
def test_a_reply_whose_first_word_is_no_keyword_is_left_for_a_person(reply: str) -> None:
    assert keyword_of(reply) is None
