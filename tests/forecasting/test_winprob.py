"""Win probability on a small synthetic organization whose wins follow known rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closeloop.core.errors import ValidationFailed
from closeloop.forecasting.winprob import Feature, WinModel, calibration_table, scores, train

FEATURES = [
    Feature("stage", "Stage", "阶段", categorical=True, fields=("stage",)),
    Feature("margin", "Margin", "毛利率", fields=("margin",)),
    Feature("activities", "Activities", "活动数"),
    Feature("noise", "Noise", "噪声"),
]


def synthetic_deals(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    stage = rng.choice(["qualification", "proposal", "negotiation"], size=n)
    margin = rng.uniform(5, 40, size=n)
    activities = rng.poisson(4, size=n)
    stage_odds = {"qualification": -1.5, "proposal": 0.0, "negotiation": 1.8}
    odds = np.array([stage_odds[s] for s in stage]) + 0.08 * (margin - 20) + 0.2 * (activities - 4)
    won = rng.random(n) < 1 / (1 + np.exp(-odds))
    frame = pd.DataFrame({"stage": stage, "margin": margin, "activities": activities, "noise": rng.normal(size=n)})
    return frame, won


@pytest.fixture(scope="module")
def model() -> WinModel:
    frame, won = synthetic_deals(600, seed=1)
    return train(frame, won, FEATURES)


def test_the_model_ranks_and_is_calibrated_on_fresh_deals(model: WinModel) -> None:
    frame, won = synthetic_deals(400, seed=2)
    probability = model.predict(frame)
    assert ((probability >= 0) & (probability <= 1)).all()
    measured = scores(probability, won)
    assert measured["auc"] > 0.75
    # better than always saying the base rate
    assert measured["brier"] < scores(np.full(len(won), model.base_rate), won)["brier"]
    table = calibration_table(probability, won, bins=5)
    assert table["deals"].sum() == 400
    big = table[table["deals"] >= 40]
    assert (abs(big["predicted"] - big["observed"]) < 0.2).all()


def test_reasons_name_the_drivers_in_both_languages(model: WinModel) -> None:
    frame = pd.DataFrame({"stage": ["negotiation"], "margin": [39.0], "activities": [9], "noise": [0.0]})
    [reasons] = model.reasons(frame)
    assert reasons[0].feature in {"stage", "margin"}
    assert all(reason.weight > 0 for reason in reasons[:2])
    assert any(r.text_en == "Stage: negotiation — raises the chance" for r in reasons)
    assert any(r.text_zh == "阶段：negotiation，提高赢单可能" for r in reasons)
    assert reasons[0].as_dict("zh")["text"] == reasons[0].text_zh


def test_a_hidden_field_never_appears_in_a_reason(model: WinModel) -> None:
    frame = pd.DataFrame({"stage": ["qualification"], "margin": [6.0], "activities": [1], "noise": [0.0]})
    [reasons] = model.reasons(frame, hidden_fields={"margin"})
    assert reasons
    assert all(reason.feature != "margin" for reason in reasons)
    assert all("Margin" not in reason.text_en and "毛利率" not in reason.text_zh for reason in reasons)


def test_unseen_categories_and_round_trip(model: WinModel) -> None:
    frame = pd.DataFrame(
        {"stage": ["closing soon", "proposal"], "margin": [20, 20], "activities": [4, 4], "noise": [0, 0]}
    )
    again = WinModel.loads(model.dumps())
    assert again.predict(frame) == pytest.approx(model.predict(frame))


def test_too_few_closed_deals_are_refused() -> None:
    frame, won = synthetic_deals(30, seed=3)
    with pytest.raises(ValidationFailed, match="too few to learn from"):
        train(frame, won, FEATURES)


def test_rows_of_one_deal_count_once_against_the_minimum() -> None:
    """30 deals seen at three points each are 90 rows but still 30 deals: refused."""
    frame, won = synthetic_deals(30, seed=3)
    rows = pd.concat([frame] * 3, ignore_index=True)
    outcome = np.concatenate([won] * 3)
    deal = np.concatenate([np.arange(30)] * 3)
    with pytest.raises(ValidationFailed, match="too few to learn from"):
        train(rows, outcome, FEATURES, weights=np.full(90, 1 / 3), groups=deal)
    with pytest.raises(ValidationFailed, match="weight per row"):
        train(rows, outcome, FEATURES, weights=np.ones(89), groups=deal)


def test_weighted_grouped_training_matches_the_rates() -> None:
    """Deals seen at several points, weighted to count once: still calibrated on fresh deals."""
    frame, won = synthetic_deals(400, seed=5)
    copies = np.random.default_rng(5).integers(1, 4, size=400)
    index = np.repeat(np.arange(400), copies)
    model = train(
        frame.iloc[index].reset_index(drop=True), won[index], FEATURES, weights=1 / copies[index], groups=index
    )
    assert model.trained_on == 400
    assert model.base_rate == pytest.approx(won.mean())
    fresh, outcome = synthetic_deals(400, seed=6)
    assert scores(model.predict(fresh), outcome)["auc"] > 0.75


def test_a_reason_names_a_picklist_value_in_the_readers_words() -> None:
    from closeloop.crm.enums import Stage
    from closeloop.forecasting.winprob import Feature, reason

    stage = Feature("stage", "Stage", "阶段", categorical=True, fields=("stage",), choices=Stage)
    said = reason(stage, "negotiation", 0.8)
    assert said.text_zh == "阶段：商务谈判，提高赢单可能"
    assert said.text_en == "Stage: Negotiation — raises the chance"
    assert said.value == "negotiation"  # the API's value stays the code
    plain = reason(Feature("industry", "Industry", "行业", categorical=True), "医院", -0.2)
    assert plain.text_zh == "行业：医院，降低赢单可能"
