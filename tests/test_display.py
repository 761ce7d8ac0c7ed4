"""acteach.display: predict-first prompts and tables (issue 16 §4)."""
import numpy as np
import pytest

from acteach import display


def test_a_prompt_left_unanswered_reveals_no_prediction(capsys):
    display.predict("nb-test-empty", "Which has lower variance?", ["REINFORCE", "reward-to-go"])
    assert display.prediction("nb-test-empty") is None
    display.reveal("nb-test-empty", "reward-to-go", "ratio 0.41 ± 0.02")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "No prediction made; the measurement says reward-to-go (ratio 0.41 ± 0.02).")


def test_a_stored_answer_is_compared_with_the_measurement():
    display.predict("nb-test-click", "Which way does the bias go?", ["up", "down", "none"])
    display.PROMPTS["nb-test-click"].value = "down"        # the student's click
    assert display.verdict("nb-test-click", "down") == (
        "You predicted down; the measurement says down ✓")
    assert display.verdict("nb-test-click", "up", "+0.3 ± 0.1") == (
        "You predicted down; the measurement says up (+0.3 ± 0.1) ✗")
    display.predict("nb-test-click", "Again?", ["up", "down"])   # shown again: cleared
    assert display.verdict("nb-test-click", "up").startswith("No prediction made")


def test_a_prompt_never_shown_reveals_no_prediction():
    assert display.verdict("nb-test-never-shown", "yes") == (
        "No prediction made; the measurement says yes.")


def test_a_prompt_without_options_is_an_error_naming_options():
    with pytest.raises(ValueError, match="options"):
        display.predict("nb-test-bad", "?", [])


def test_table_renders_value_pm_se_as_html_and_as_aligned_text(capsys):
    rows = [["REINFORCE", (12.345, 0.4567), 3], ["reward-to-go", (5.0, 0.25), 10]]
    view = display.table_view(rows, ["estimator", "variance", "N"], title="Variance <N>")
    page = view._repr_html_()
    assert "<caption>Variance &lt;N&gt;</caption>" in page
    assert "<td style=\"text-align:right\">12.3 ± 0.46</td>" in page
    assert page.count("<tr>") == 3
    assert str(view).splitlines() == [
        "Variance <N>",
        "estimator        variance   N",
        "------------  -----------  --",
        "REINFORCE     12.3 ± 0.46   3",
        "reward-to-go     5 ± 0.25  10",
    ]
    display.table(rows, ["estimator", "variance", "N"], digits=2)
    assert "12 ± 0.46" in capsys.readouterr().out


def test_table_rejects_a_row_of_the_wrong_length_naming_rows():
    with pytest.raises(ValueError, match="rows: row 1 has 1 values, expected 2"):
        display.table_view([[1, 2], [3]], ["a", "b"])


def test_cells_show_bools_ints_and_numpy_numbers_as_themselves():
    assert [display.cell_text(v) for v in (True, np.bool_(False), np.int64(7), np.float32(0.5),
                                          None, "x", (np.float64(2.0), 0.125))] == [
        "True", "False", "7", "0.5", "", "x", "2 ± 0.12"]
