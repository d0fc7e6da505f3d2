"""Demand forecasts: statsforecast models and a LightGBM model with signals (mlforecast), backtested.

``backtest`` runs a rolling-origin evaluation (``windows`` origins, each forecasting ``horizon``
steps, the origins ``horizon`` steps apart) and scores every model with WAPE and MASE;
``forecast`` fits on the whole history and forecasts the horizon after it. The ensemble is the
mean of the non-baseline models, and the model *chosen* for the final forecast is the one with the
lowest backtest WAPE.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from closeloop.core.errors import ValidationFailed
from closeloop.forecasting.data import Panel
from closeloop.forecasting.metrics import accuracy, mase, wape

BASELINE = "SeasonalNaive"
ENSEMBLE = "Ensemble"
MSTL_ETS = "MSTL-ETS"
#: share of zero values above which a panel counts as intermittent (Croston-type models join in)
INTERMITTENT_ZERO_SHARE = 0.3


@dataclass(frozen=True)
class ModelOptions:
    arima: bool = False
    lightgbm: bool = True
    n_jobs: int = 1
    lgbm_estimators: int = 400


@dataclass(frozen=True)
class Score:
    model: str
    wape: float | None
    mase: float | None

    @property
    def accuracy(self) -> float | None:
        return accuracy(self.wape)


@dataclass
class Backtest:
    scores: list[Score]
    predictions: pd.DataFrame
    models: list[str]
    horizon: int
    windows: int
    #: the shortest training history of the first origin (it decides which models can run)
    train_length: int
    notes: list[str] = field(default_factory=list)

    def score(self, model: str) -> Score:
        return next(score for score in self.scores if score.model == model)

    @property
    def chosen(self) -> str:
        ranked = [score for score in self.scores if score.wape is not None]
        if not ranked:
            return BASELINE
        return min(ranked, key=lambda score: score.wape if score.wape is not None else np.inf).model


def _baseline_lag(panel: Panel, min_length: int) -> int:
    """Seasonal naive needs a full season of history; shorter panels fall back to the naive lag 1."""
    return panel.season_length if min_length > panel.season_length else 1


def stats_models(panel: Panel, train_length: int, options: ModelOptions) -> list[Any]:
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, CrostonSBA, SeasonalNaive

    season = _baseline_lag(panel, train_length)
    # ETS is seasonal only up to 24 periods per season (statsforecast); weekly data use a non-seasonal ETS
    ets_season = season if 1 < season <= 24 and train_length >= 2 * season else 1
    models: list[Any] = [SeasonalNaive(season_length=season, alias=BASELINE), AutoETS(season_length=ets_season)]
    if season > 24 and train_length >= 2 * season:
        # a long season (52 weeks): STL takes the season out, ETS forecasts what is left
        models.append(MSTL(season_length=season, trend_forecaster=AutoETS(model="ZZN"), alias=MSTL_ETS))
    if options.arima:
        models.append(AutoARIMA(season_length=ets_season))
    if panel.zero_share > INTERMITTENT_ZERO_SHARE:
        models.append(CrostonSBA())
    return models


def ensemble_members(models: list[str]) -> list[str]:
    """The ensemble: LightGBM with signals averaged with the seasonal statistical model (MSTL-ETS for a
    long season, else AutoETS) and, for intermittent series, the Croston-type model."""
    statistical = MSTL_ETS if MSTL_ETS in models else "AutoETS"
    return [model for model in ("LightGBM", statistical, "CrostonSBA") if model in models]


def _week_of_year(dates: pd.DatetimeIndex) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(dates.isocalendar().week, dtype=np.int64)


def lightgbm_forecaster(panel: Panel, train_length: int, options: ModelOptions) -> Any:
    """A global LightGBM over lags, rolling means, calendar features and the signals."""
    from lightgbm import LGBMRegressor
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import LocalStandardScaler

    season = panel.season_length
    # enough rows must keep a full set of lags to learn from
    lags = [lag for lag in (1, 2, 3, 4, 8, 13, season) if lag < max(train_length - 8, 2)]
    lags = sorted(set(lags)) or [1]
    window = max(2, min(season, 13, train_length // 4))
    lag_transforms = {1: [RollingMean(window_size=window)]}
    date_features: list[Any]
    if panel.freq.startswith("W"):
        date_features = [_week_of_year, "month"]
    elif panel.freq == "D":
        date_features = ["dayofweek", "month"]
    else:
        date_features = ["month"]
    intermittent = panel.zero_share > INTERMITTENT_ZERO_SHARE and bool((panel.history["y"] >= 0).all())
    regressor = LGBMRegressor(
        n_estimators=options.lgbm_estimators,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=10,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        objective="tweedie" if intermittent else "regression",
        n_jobs=options.n_jobs,
        random_state=7,
        verbosity=-1,
    )
    return MLForecast(
        models={"LightGBM": regressor},
        freq=panel.freq,
        lags=lags,
        lag_transforms=lag_transforms,  # type: ignore[arg-type]
        date_features=date_features,
        # series differ in scale by orders of magnitude; intermittent counts keep their zeros (tweedie)
        target_transforms=None if intermittent else [LocalStandardScaler()],
    )


def _min_length(panel: Panel) -> int:
    return int(panel.history.groupby("unique_id").size().min())


def _check_length(panel: Panel, horizon: int, windows: int) -> int:
    if horizon < 1:
        raise ValidationFailed.one("horizon", "must be at least 1")
    if windows < 1:
        raise ValidationFailed.one("windows", "must be at least 1")
    min_length = _min_length(panel)
    needed = horizon * windows + max(2 * horizon, 8)
    if min_length < needed:
        raise ValidationFailed.one(
            "value",
            f"the shortest series has {min_length} periods; a backtest of {windows} × {horizon} periods "
            f"needs at least {needed}",
        )
    return min_length


def backtest(panel: Panel, *, horizon: int, windows: int = 3, options: ModelOptions | None = None) -> Backtest:
    """Rolling-origin backtest of every model on ``panel``."""
    from statsforecast import StatsForecast

    options = options or ModelOptions()
    train_length = _check_length(panel, horizon, windows) - horizon * windows
    history = panel.history
    statistical = StatsForecast(
        models=stats_models(panel, train_length, options), freq=panel.freq, n_jobs=options.n_jobs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictions = statistical.cross_validation(
            df=history[["unique_id", "ds", "y"]], h=horizon, n_windows=windows, step_size=horizon
        )
    predictions = pd.DataFrame(predictions)
    if options.lightgbm:
        learner = lightgbm_forecaster(panel, train_length, options)
        learned = learner.cross_validation(
            df=history, n_windows=windows, h=horizon, step_size=horizon, static_features=[]
        )
        predictions = predictions.merge(
            learned[["unique_id", "ds", "cutoff", "LightGBM"]], on=["unique_id", "ds", "cutoff"], how="left"
        )
    models = [column for column in predictions.columns if column not in ("unique_id", "ds", "cutoff", "y")]
    if bool((history["y"] >= 0).all()):
        predictions[models] = predictions[models].clip(lower=0.0)
    members = ensemble_members(models)
    if len(members) > 1:
        predictions[ENSEMBLE] = predictions[members].mean(axis=1)
        models.append(ENSEMBLE)
    scores = score_predictions(predictions, history, models, panel.season_length)
    return Backtest(
        scores=scores,
        predictions=predictions,
        models=models,
        horizon=horizon,
        windows=windows,
        train_length=train_length,
    )


def score_predictions(
    predictions: pd.DataFrame, history: pd.DataFrame, models: list[str], season_length: int
) -> list[Score]:
    """WAPE over everything, MASE per series and origin averaged over the series with a non-zero scale."""
    values = {uid: (group["ds"].to_numpy(), group["y"].to_numpy()) for uid, group in history.groupby("unique_id")}
    per_model: dict[str, list[float]] = {model: [] for model in models}
    for (uid, cutoff), group in predictions.groupby(["unique_id", "cutoff"], sort=False):
        dates, ys = values[uid]
        past = ys[dates <= np.datetime64(cutoff)]
        for model in models:
            value = mase(group["y"].to_numpy(), group[model].to_numpy(), past, season_length)
            if value is not None:
                per_model[model].append(value)
    return [
        Score(
            model=model,
            wape=wape(predictions["y"].to_numpy(), predictions[model].to_numpy()),
            mase=float(np.mean(per_model[model])) if per_model[model] else None,
        )
        for model in models
    ]


def future_signals(panel: Panel, horizon: int) -> tuple[pd.DataFrame, list[str]]:
    """The signals for the ``horizon`` periods after each series' history: from the file's future rows,
    or (noted) the last known value carried forward where the file has none."""
    notes: list[str] = []
    offset = pd.tseries.frequencies.to_offset(panel.freq)
    last = panel.history.groupby("unique_id")["ds"].max()
    grid = pd.DataFrame(
        [(uid, end + offset * step) for uid, end in last.items() for step in range(1, horizon + 1)],
        columns=["unique_id", "ds"],
    )
    if not panel.exog:
        return grid, notes
    known = panel.future[["unique_id", "ds", *panel.exog]]
    merged = grid.merge(known, on=["unique_id", "ds"], how="left")
    carried = merged[list(panel.exog)].isna().any(axis=1)
    if bool(carried.any()):
        latest = panel.history.sort_values("ds").groupby("unique_id")[list(panel.exog)].last()
        filled = merged.loc[carried, ["unique_id"]].join(latest, on="unique_id")
        merged.loc[carried, list(panel.exog)] = merged.loc[carried, list(panel.exog)].fillna(filled[list(panel.exog)])
        notes.append(
            f"{int(carried.sum())} future period(s) have no signal values in the file; "
            "the last known values were carried forward for them"
        )
    return merged, notes


def forecast(
    panel: Panel, *, horizon: int, model: str, train_length: int | None = None, options: ModelOptions | None = None
) -> pd.DataFrame:
    """Fit on the whole history and forecast ``horizon`` periods with every model, the ensemble and
    ``model`` (the chosen one) as the ``forecast`` column. ``train_length`` (a backtest's) makes the
    same models run as were backtested."""
    from statsforecast import StatsForecast

    options = options or ModelOptions()
    min_length = train_length or _min_length(panel)
    statistical = StatsForecast(models=stats_models(panel, min_length, options), freq=panel.freq, n_jobs=options.n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pd.DataFrame(statistical.forecast(df=panel.history[["unique_id", "ds", "y"]], h=horizon))
    if options.lightgbm:
        learner = lightgbm_forecaster(panel, min_length, options)
        learner.fit(panel.history, static_features=[])
        signals, notes = future_signals(panel, horizon)
        panel.notes.extend(notes)
        learned = learner.predict(h=horizon, X_df=signals if panel.exog else None)
        result = result.merge(learned, on=["unique_id", "ds"], how="left")
    models = [column for column in result.columns if column not in ("unique_id", "ds")]
    if bool((panel.history["y"] >= 0).all()):
        result[models] = result[models].clip(lower=0.0)
    members = ensemble_members(models)
    if len(members) > 1:
        result[ENSEMBLE] = result[members].mean(axis=1)
    result["forecast"] = result[model]
    result["model"] = model
    return result.sort_values(["unique_id", "ds"]).reset_index(drop=True)
