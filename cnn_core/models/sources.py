"""The five documents the lab is built from, named once: title, authors, what each gives.

Pages, model descriptions and presets cite a document through ``cite`` so that a learner
reads its title ("the tutorial *Implementing Convolutional Neural Networks in TensorFlow
and Keras*"), never an internal file number. The README's References section lists the
same entries (``reference``).

Typical use::

    cite("tf_keras_tutorial")                    # 'the tutorial *Implementing …*'
    cite("cifar10_report", "figures 9 to 13")    # '… *Image Classification …*, figures 9 to 13'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One document the lab reproduces or teaches from.

    Attributes:
        key: The name the code cites it by.
        kind: What it is, as a reader would say it: "tutorial", "project report", ...
        title: Its title as the document gives it (capitalised as a title).
        authors: The authors as the document names them, or None where it names nobody.
        origin: Where it comes from when that helps to find it (a repository, a course).
        contributes: What the lab takes from it, in one sentence.
    """

    key: str
    kind: str
    title: str
    authors: str | None
    origin: str
    contributes: str


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source(
            key="tf_keras_tutorial",
            kind="tutorial",
            title="Implementing Convolutional Neural Networks in TensorFlow and Keras",
            authors=None,
            origin="a README tutorial; it names no author",
            contributes="The simple ConvNet (three 3×3 convolutions of 32 filters) and its "
            "figures: 92.36% test accuracy on MNIST, 47.97% on CIFAR-10.",
        ),
        Source(
            key="convnet_repository",
            kind="repository",
            title="Convolutional Networks for image recognition",
            authors=None,
            origin="the GitHub repository ArthMx/ConvNet (its README names no author)",
            contributes="The classic networks (LeNet-5, VGG, All-CNN, ResNet, Wide ResNet), "
            "a small VGG-like model at 99% on MNIST and their CIFAR-10 accuracies "
            "(79.8% to 92.2%).",
        ),
        Source(
            key="cifar10_report",
            kind="project report",
            title="Image Classification Using Convolutional Neural Network CNN",
            authors="Imane Bougrine, Youssef El Kantri, Anas Mansouri and Younes Rizki "
            "(supervised by Hiba Chougrad)",
            origin="final project report, Artificial Intelligence, Embedded Systems and "
            "Industrial Computing Engineering, 2019–2020",
            contributes="The worked convolution example (figures 9 to 13), padding, "
            "strides and max-pooling (figure 21), and the VGG-like CIFAR-10 network with "
            "batch norm and dropout (86.3% test accuracy).",
        ),
        Source(
            key="mnist_notes",
            kind="notes",
            title="Use a CNN to recognize handwritten digits from the MNIST data-set",
            authors=None,
            origin="study notes in French and English that name no author; their code is "
            "TensorFlow Tutorial #02 (Convolutional Neural Network)",
            contributes="The TensorFlow tutorial CNN: two 5×5 convolution blocks that pool "
            "before the ReLU, then a 128-unit dense layer.",
        ),
        Source(
            key="keras_fashion_tutorial",
            kind="tutorial",
            title="Convolutional Neural Networks in Python with Keras",
            authors="Haytam El Youssfi",
            origin="a tutorial on Fashion-MNIST",
            contributes="The Fashion-MNIST CNN with leaky ReLUs, and the over-fitting "
            "lesson: the same network with and without dropout.",
        ),
    )
}


def get(key: str) -> Source:
    """The source with that key.

    Raises:
        KeyError: Naming the known keys.
    """
    try:
        return SOURCES[key]
    except KeyError:
        raise KeyError(f"Unknown source {key!r}; known: {', '.join(SOURCES)}.") from None


def cite(key: str, where: str | None = None, markdown: bool = True) -> str:
    """A short citation for running text: the kind of document and its title in italics.

    Args:
        key: A key of ``SOURCES``.
        where: A place inside it ("figure 13"), appended after a comma.
        markdown: Whether to italicise the title with asterisks; False puts it in quotes,
            for text that is already italic or is not Markdown.

    Returns:
        For example "the project report *Image Classification Using Convolutional Neural
        Network CNN*, figure 13".
    """
    source = get(key)
    title = f"*{source.title}*" if markdown else f"“{source.title}”"
    text = f"the {source.kind} {title}"
    return f"{text}, {where}" if where else text


def reference(key: str) -> str:
    """The full reference, as the README's References section gives it (Markdown)."""
    source = get(key)
    by = f"{source.authors}. " if source.authors else ""
    return f"{by}*{source.title}*. {source.origin[0].upper()}{source.origin[1:]}."
