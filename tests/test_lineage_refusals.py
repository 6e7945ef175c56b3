"""Inputs that cannot be given (issue 23), the refusals test_inputs.py does not reach: an input
run that is gone (its Kaggle kernel deleted) or archived is refused before anything is pushed or
published: one line, its exit code, no ledger row."""

from test_inputs import READER, READER_RECIPE, ledger_rows, push_ok


def test_an_archived_input_is_refused_until_restored(tiny):
    tiny.write("builders/reader.toml", READER_RECIPE)
    tiny.write("src/pkg/reader.py", READER)
    push_ok(tiny, "tiny", "-p", "label=kept")
    assert tiny.kjob("runs", "archive", "tiny", "--version", "1").exit_code == 0
    result = tiny.kjob("push", "reader", "--input", "tiny:v1")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: input tiny:v1: tiny v1 (local) is archived: restore it first (kjob runs "
                                    "archive tiny --version 1 --backend local --restore)")
    assert len(result.output.strip().splitlines()) == 1
    assert [r.kernel for r in ledger_rows(tiny)] == ["tiny"]
    assert tiny.kjob("runs", "archive", "tiny", "--version", "1", "--backend", "local", "--restore").exit_code == 0
    push_ok(tiny, "reader", "--input", "tiny:v1")


def test_a_deleted_kaggle_input_is_refused_before_anything_is_published(kaggle):
    ws = kaggle.ws
    ws.write("builders/reader.toml", READER_RECIPE)
    ws.write("src/pkg/reader.py", READER)
    assert kaggle.push("tiny", "-p", "label=deleted").exit_code == 0
    assert kaggle.kjob("status", "tiny", "--watch").exit_code == 0  # complete, its outputs not fetched
    kaggle.emulator.store.handle("DeleteKernel", {"userName": "alice", "kernelSlug": "tiny-kernel"}, "alice")
    for push in (kaggle.push, lambda *args: ws.kjob("push", *args)):  # a Kaggle push (publishes) and a local one
        result = push("reader", "--input", "tiny@kaggle:v1")
        assert result.exit_code == 4, result.output
        assert result.output.startswith("error: input tiny@kaggle:v1: tiny v1 cannot be fetched: the Kaggle kernel "
                                        "alice/tiny-kernel of tiny v1 no longer exists")
        assert len(result.output.strip().splitlines()) == 1
        assert [r.kernel for r in ledger_rows(ws)] == ["tiny"]
    # Pushed again, the kernel is another one (k2): the deleted one's runs are gone, and refused as such.
    assert kaggle.push("tiny", "-p", "label=again", "--wait").exit_code == 0
    gone = kaggle.push("reader", "--input", "tiny:k1-v1")
    assert (gone.exit_code, gone.output) == (4, "error: input tiny:k1-v1: tiny v1 is gone (its kernel was deleted)\n")
    assert sorted(r.kernel for r in ledger_rows(ws)) == ["tiny", "tiny"]
    with kaggle.emulator.store.lock:  # nothing was published for a refused input
        assert kaggle.emulator.store.models == {}


def test_the_hint_for_an_older_kaggle_version_s_outputs_names_it_unambiguously(kaggle):
    """tiny v1 on Kaggle and locally: the hint's command must pick the Kaggle one, and work."""
    assert kaggle.push("tiny", "-p", "label=one", "--wait").exit_code == 0
    assert kaggle.push("tiny", "-p", "label=two", "--wait").exit_code == 0
    assert kaggle.ws.kjob("push", "tiny", "--wait").exit_code == 0  # a local v1 too
    old = kaggle.kjob("logs", "tiny:kaggle-v1")
    assert old.exit_code == 7 and "(its outputs can: kjob fetch tiny --version kaggle-v1 --output)" in old.output
    hinted = kaggle.kjob("fetch", "tiny", "--version", "kaggle-v1", "--output")
    assert hinted.exit_code == 0, hinted.output
