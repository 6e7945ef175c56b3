"""A Kaggle reference, `owner/slug[/N]`, is parsed in one place (kjob.kaggle_platform), and
/kaggle/input's layouts are written once: the local backend's sandbox and the emulator's
sessions mount a dataset source at the same paths."""

import pytest

from kjob.kaggle_platform import KaggleRef, input_layouts


@pytest.mark.parametrize("text, expected", [
    ("alice/noisy-speech", KaggleRef("alice", "noisy-speech")),
    ("alice/noisy-speech/3", KaggleRef("alice", "noisy-speech", 3)),
    ("Alice_2/data.v2", KaggleRef("Alice_2", "data.v2")),
    ("alice", None), ("alice/", None), ("/slug", None), ("alice/data/", None),
    ("alice/data/v3", None), ("alice/data/3/4", None), ("alice/my data", None),
    (" alice/data", None), ("", None), (None, None), (5, None),
])
def test_read_takes_only_a_well_formed_reference(text, expected):
    assert KaggleRef.read(text) == expected


def test_read_without_a_version_refuses_one():
    assert KaggleRef.read("alice/data/3", versioned=False) is None
    assert KaggleRef.read("alice/data", versioned=False) == KaggleRef("alice", "data")


@pytest.mark.parametrize("text, expected", [
    ("alice/data", KaggleRef("alice", "data")),
    (" alice/data/7 ", KaggleRef("alice", "data", 7)),
    ("alice/data/latest", KaggleRef("alice", "data")),
    ("alice", KaggleRef("alice", "")),
])
def test_parse_takes_the_pieces_as_written(text, expected):
    assert KaggleRef.parse(text) == expected


def test_key_and_text():
    ref = KaggleRef.parse("alice/data/7")
    assert (ref.key, str(ref)) == ("alice/data", "alice/data/7")
    assert str(KaggleRef("alice", "data")) == "alice/data"


def test_input_layouts_of_each_kind():
    assert input_layouts("dataset", "alice/data/2") == ["datasets/alice/data", "data"]
    assert input_layouts("kernel", "alice/prep") == ["notebooks/alice/prep", "prep"]
    assert input_layouts("competition", "titanic") == ["competitions/titanic", "titanic"]
    assert input_layouts("model", "alice/m/pytorch/base") == ["models/alice/m/pytorch/base/1"]
    assert input_layouts("model", "alice/m/pytorch/base/4") == ["models/alice/m/pytorch/base/4"]
