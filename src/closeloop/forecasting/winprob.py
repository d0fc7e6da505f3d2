"""Win probability (FC-1): a calibrated LightGBM over an organization's closed deals, with each
prediction's top reasons in plain words (zh + en) taken from LightGBM's feature contributions.

The model is generic over a frame of features described by :class:`Feature` (what it is called in
both languages, whether it is a category, and which record fields it reveals, so that a reason is
never shown to someone whose field mask hides one of them). Calibration is scikit-learn's
``CalibratedClassifierCV`` with isotonic regression on out-of-fold predictions (``ensemble=False``:
one LightGBM fitted on all the data, whose ``pred_contrib`` gives the reasons).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from closeloop.core.errors import ValidationFailed
from closeloop.integrations.importing.labels import display_label

#: fewer closed deals than this (or fewer than this many of either outcome / 10) and no model is trained
MIN_CLOSED = 40


@dataclass(frozen=True)
class Feature:
    name: str
    label_en: str
    label_zh: str
    categorical: bool = False
    #: record fields whose values this feature reveals (a masked field hides the reason)
    fields: tuple[str, ...] = ()
    #: the picklist a categorical value comes from: reasons name it in the reader's words (商务谈判, not negotiation)
    choices: type[StrEnum] | None = None


@dataclass(frozen=True)
class Reason:
    feature: str
    value: str
    #: contribution to the log-odds of winning (positive raises the chance)
    weight: float
    text_en: str
    text_zh: str

    def as_dict(self, locale: str = "en") -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": self.value,
            "direction": "up" if self.weight > 0 else "down",
            "weight": round(self.weight, 4),
            "text": self.text_zh if locale.startswith("zh") else self.text_en,
        }


def _value_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def reason(feature: Feature, value: Any, weight: float) -> Reason:
    shown = _value_text(value)
    if weight > 0:
        en, zh = "raises the chance", "提高赢单可能"
    else:
        en, zh = "lowers the chance", "降低赢单可能"
    choices = getattr(feature, "choices", None)  # a model pickled before picklists were named has none
    shown_en = display_label(choices, shown, "en") if choices is not None else shown
    shown_zh = display_label(choices, shown, "zh_CN") if choices is not None else shown
    return Reason(
        feature=feature.name,
        value=shown,
        weight=weight,
        text_en=f"{feature.label_en}: {shown_en} — {en}",
        text_zh=f"{feature.label_zh}：{shown_zh}，{zh}",
    )


@dataclass
class WinModel:
    features: list[Feature]
    estimator: Any  # CalibratedClassifierCV
    categories: dict[str, list[str]]
    trained_on: int
    base_rate: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def frame(self, data: pd.DataFrame) -> pd.DataFrame:
        """The model's inputs: categories with the training levels (unseen ones become missing)."""
        missing = [feature.name for feature in self.features if feature.name not in data.columns]
        if missing:
            raise ValidationFailed.one(missing[0], "feature is missing from the data")
        columns: dict[str, Any] = {}
        for feature in self.features:
            column = data[feature.name]
            if feature.categorical:
                columns[feature.name] = pd.Categorical(
                    column.astype("string").astype(object), categories=self.categories[feature.name]
                )
            else:
                columns[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        return pd.DataFrame(columns, index=data.index)

    def predict(self, data: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.asarray(self.estimator.predict_proba(self.frame(data))[:, 1], dtype=np.float64)

    @property
    def booster(self) -> Any:
        return self.estimator.calibrated_classifiers_[0].estimator.booster_

    def reasons(self, data: pd.DataFrame, *, top: int = 3, hidden_fields: Collection[str] = ()) -> list[list[Reason]]:
        """Each row's ``top`` strongest feature contributions, skipping features that reveal a hidden field."""
        inputs = self.frame(data)
        contributions = np.asarray(self.booster.predict(inputs, pred_contrib=True))
        shown = [
            index
            for index, feature in enumerate(self.features)
            if not any(name in hidden_fields for name in feature.fields)
        ]
        result: list[list[Reason]] = []
        for row in range(len(inputs)):
            weights = contributions[row, : len(self.features)]
            order = sorted(shown, key=lambda index: -abs(weights[index]))
            picked = [index for index in order if abs(weights[index]) >= 0.01][:top]
            result.append(
                [reason(self.features[i], data[self.features[i].name].iloc[row], float(weights[i])) for i in picked]
            )
        return result

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        pickle.dump(self, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @staticmethod
    def loads(blob: bytes) -> WinModel:
        # only ever our own blobs, written by ``dumps`` into the organization's own row
        model = pickle.loads(blob)  # noqa: S301
        if not isinstance(model, WinModel):
            raise TypeError("not a stored win-probability model")
        return model


def train(
    data: pd.DataFrame,
    won: npt.ArrayLike,
    features: list[Feature],
    *,
    weights: npt.ArrayLike | None = None,
    groups: npt.ArrayLike | None = None,
    n_jobs: int = 1,
    seed: int = 7,
) -> WinModel:
    """Fit a calibrated LightGBM on closed deals (``won`` true/false per row).

    A deal may give several rows (as it stood at several points of its life): ``groups`` names each
    row's deal, so that the calibration's folds never split a deal, and ``weights`` weigh its rows
    (summing to one per deal, a deal counts once — in the fit, the calibration and the minimum
    numbers of won and lost deals below)."""
    from lightgbm import LGBMClassifier
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedGroupKFold

    outcome = np.asarray(won, dtype=bool)
    weight = np.ones(len(outcome)) if weights is None else np.asarray(weights, dtype=float)
    if weight.shape != outcome.shape or not np.all(np.isfinite(weight)) or (weight < 0).any() or weight.sum() <= 0:
        raise ValidationFailed.one("weights", "needs one finite, non-negative weight per row, not all zero")
    if groups is None:
        wins, losses = int(outcome.sum()), int((~outcome).sum())
    else:
        # a deal's rows share its outcome: count deals, not rows
        per_deal = pd.Series(outcome, index=np.asarray(groups)).groupby(level=0).first()
        wins, losses = int(per_deal.sum()), int((~per_deal).sum())
    deals = wins + losses
    if deals < MIN_CLOSED or min(wins, losses) < max(5, MIN_CLOSED // 10):
        raise ValidationFailed.one(
            "closed_deals",
            f"{wins} won and {losses} lost deals are too few to learn from (need {MIN_CLOSED} closed, "
            f"with at least {max(5, MIN_CLOSED // 10)} of each)",
        )
    categories = {
        feature.name: sorted({str(v) for v in data[feature.name].dropna().astype(str)})
        for feature in features
        if feature.categorical
    }
    model = WinModel(
        features=features,
        estimator=None,
        categories=categories,
        trained_on=deals,
        base_rate=float(weight[outcome].sum() / weight.sum()),
    )
    inputs = model.frame(data)
    learner = LGBMClassifier(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=max(5, min(20, len(outcome) // 50)),
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        n_jobs=n_jobs,
        random_state=seed,
        verbosity=-1,
    )
    folds: Any = 3
    if groups is not None:
        folds = list(
            StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=seed).split(inputs, outcome, np.asarray(groups))
        )
    calibrated = CalibratedClassifierCV(learner, method="isotonic", cv=folds, ensemble=False)
    calibrated.fit(inputs, outcome.astype(int), sample_weight=None if weights is None else weight)
    model.estimator = calibrated
    return model


def calibration_table(probability: npt.ArrayLike, won: npt.ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Deals grouped by predicted probability (equal-width bins): count, mean prediction, observed win rate."""
    frame = pd.DataFrame({"p": np.asarray(probability, dtype=float), "won": np.asarray(won, dtype=float)})
    frame["bin"] = pd.cut(frame["p"], bins=np.linspace(0, 1, bins + 1), include_lowest=True)
    table = frame.groupby("bin", observed=True).agg(
        deals=("won", "size"), predicted=("p", "mean"), observed=("won", "mean")
    )
    return table.reset_index()


def scores(probability: npt.ArrayLike, won: npt.ArrayLike, *, weights: npt.ArrayLike | None = None) -> dict[str, float]:
    """AUC (how well the ranking separates wins from losses) and Brier score (mean squared error of the
    probability), each row weighed by ``weights`` when given (a deal's rows summing to one)."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = np.asarray(won, dtype=int)
    p = np.asarray(probability, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    return {
        "auc": float(roc_auc_score(y, p, sample_weight=w)),
        "brier": float(brier_score_loss(y, p, sample_weight=w)),
    }
