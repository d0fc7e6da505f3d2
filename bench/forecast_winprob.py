"""Win-probability accuracy (FC-1) on Maven CRM (won/lost deals) and X Education (lead conversion).

    nice -n 10 .venv/bin/python bench/forecast_winprob.py

Time-based split: the earliest 75 % of closed deals (by close date; X Education has no dates, so
by lead number) train, the rest test. The model is the product's: a calibrated LightGBM with reasons
(closeloop.forecasting.winprob). The baseline is the historical win rate of the deal's group in the
training part (Maven: by product, as its closed deals carry no stage before closing; X Education:
by lead origin × lead source), smoothed towards the overall rate. Prints AUC, Brier score and a
calibration table for each, in the same process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.conftest import shared_data  # noqa: E402

from closeloop.forecasting.winprob import Feature, calibration_table, scores, train  # noqa: E402

SMOOTHING = 20.0

Loaded = tuple[pd.DataFrame, pd.Series, list[Feature], str, str]


def group_rate(train_keys: pd.Series, train_won: pd.Series, test_keys: pd.Series) -> np.ndarray:
    """Historical win rate per group, smoothed towards the overall rate (m-estimate with m = 20)."""
    overall = float(train_won.mean())
    grouped = (
        pd.DataFrame({"k": train_keys.to_numpy(), "w": train_won.to_numpy()}).groupby("k")["w"].agg(["sum", "count"])
    )
    rate = (grouped["sum"] + SMOOTHING * overall) / (grouped["count"] + SMOOTHING)
    return np.asarray(test_keys.map(rate).fillna(overall), dtype=float)


def prior_history(deals: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """For each deal: how many deals of the same ``key`` closed before it was engaged, and their win rate."""
    counts = np.zeros(len(deals))
    rates = np.full(len(deals), np.nan)
    closed = deals[deals["won"].notna()]
    for value, group in deals.groupby(key):
        history = closed[closed[key] == value].sort_values("close_date")
        ends = history["close_date"].to_numpy()
        cumulative = np.concatenate([[0.0], np.cumsum(history["won"].to_numpy(dtype=float))])
        for position, engaged in zip(group.index, group["engage_date"].to_numpy(), strict=True):
            n = int(np.searchsorted(ends, engaged, side="left")) if not pd.isna(engaged) else 0
            counts[deals.index.get_loc(position)] = n
            if n:
                rates[deals.index.get_loc(position)] = cumulative[n] / n
    return counts, rates


def maven() -> Loaded:
    folder = shared_data("maven-crm")
    deals = pd.read_csv(folder / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    deals["product"] = deals["product"].replace({"GTXPro": "GTX Pro"})
    deals = deals.merge(pd.read_csv(folder / "products.csv"), on="product", how="left")
    deals = deals.merge(pd.read_csv(folder / "accounts.csv"), on="account", how="left")
    deals = deals.merge(pd.read_csv(folder / "sales_teams.csv"), on="sales_agent", how="left")
    deals["won"] = deals["deal_stage"].map({"Won": 1.0, "Lost": 0.0})
    deals = deals.reset_index(drop=True)
    deals["owner_deals"], deals["owner_win_rate"] = prior_history(deals, "sales_agent")
    deals["account_deals"], deals["account_win_rate"] = prior_history(deals.fillna({"account": "(none)"}), "account")
    deals["engage_month"] = deals["engage_date"].dt.month
    closed = deals[deals["won"].notna()].sort_values("close_date").reset_index(drop=True)
    features = [
        Feature("product", "Product", "产品", categorical=True, fields=("product_id",)),
        Feature("series", "Product line", "产品线", categorical=True, fields=("product_id",)),
        Feature("sales_price", "List price", "标价", fields=("amount",)),
        Feature("sector", "Industry", "行业", categorical=True, fields=("account_id",)),
        Feature("revenue", "Account revenue", "客户营收", fields=("account_id",)),
        Feature("employees", "Account employees", "客户员工数", fields=("account_id",)),
        Feature("office_location", "Account country", "客户国家", categorical=True, fields=("account_id",)),
        Feature("regional_office", "Region", "区域", categorical=True, fields=("owner_id",)),
        Feature("sales_agent", "Owner", "负责人", categorical=True, fields=("owner_id",)),
        Feature("owner_deals", "Owner's closed deals", "负责人已结束的商机数", fields=("owner_id",)),
        Feature("owner_win_rate", "Owner's win rate", "负责人赢单率", fields=("owner_id",)),
        Feature("account_deals", "Account's earlier deals", "客户以往商机数", fields=("account_id",)),
        Feature("account_win_rate", "Account's win rate", "客户赢单率", fields=("account_id",)),
        Feature("engage_month", "Month engaged", "开始跟进月份"),
    ]
    return closed, closed["won"].astype(bool), features, "product", "Maven CRM (won vs lost deals)"


def x_education() -> Loaded:
    leads = pd.read_csv(shared_data("x-education-leads") / "Leads.csv")
    leads = leads.sort_values("Lead Number").reset_index(drop=True).replace({"Select": np.nan})
    leads["origin_source"] = leads["Lead Origin"].astype(str) + " / " + leads["Lead Source"].astype(str)
    # left out as they are filled in after the outcome is known (they leak it): Tags, Lead Quality,
    # Lead Profile, the Asymmetrique scores, Last Activity and Last Notable Activity
    features = [
        Feature("Lead Origin", "Lead origin", "线索来源方式", categorical=True),
        Feature("Lead Source", "Lead source", "线索来源", categorical=True),
        Feature("Do Not Email", "Do not email", "不接收邮件", categorical=True),
        Feature("TotalVisits", "Website visits", "网站访问次数"),
        Feature("Total Time Spent on Website", "Time on website (s)", "网站停留时间（秒）"),
        Feature("Page Views Per Visit", "Pages per visit", "每次访问页数"),
        Feature("Specialization", "Specialization", "专业方向", categorical=True),
        Feature("What is your current occupation", "Occupation", "职业", categorical=True),
        Feature("City", "City", "城市", categorical=True),
        Feature("Country", "Country", "国家", categorical=True),
    ]
    return leads, leads["Converted"].astype(bool), features, "origin_source", "X Education (lead converted)"


def evaluate(loader: Callable[[], Loaded]) -> None:
    data, won, features, group, title = loader()
    cut = int(len(data) * 0.75)
    train_part, test_part = data.iloc[:cut], data.iloc[cut:]
    model = train(train_part, won.iloc[:cut], features, n_jobs=2)
    predicted = model.predict(test_part)
    baseline = group_rate(train_part[group], won.iloc[:cut].astype(float), test_part[group])
    truth = won.iloc[cut:].to_numpy()
    ours, theirs = scores(predicted, truth), scores(baseline, truth)
    print(f"#### {title}: {cut:,} train, {len(data) - cut:,} test (time-ordered), test win rate {truth.mean():.1%}")
    print()
    print("| model | AUC | Brier |")
    print("|---|---:|---:|")
    print(
        f"| historical win rate by {group.replace('_', ' ')} (baseline) | {theirs['auc']:.3f} | {theirs['brier']:.4f} |"
    )
    print(f"| calibrated LightGBM | {ours['auc']:.3f} | {ours['brier']:.4f} |")
    print(
        f"| constant (training win rate) | 0.500 | {scores(np.full(len(truth), model.base_rate), truth)['brier']:.4f} |"
    )
    print()
    print("| predicted | deals | mean predicted | observed |")
    print("|---|---:|---:|---:|")
    for row in calibration_table(predicted, truth).itertuples():
        print(f"| {row.bin} | {row.deals} | {row.predicted:.1%} | {row.observed:.1%} |")
    example = model.reasons(test_part.iloc[:1])[0]
    print()
    print(f"reasons for the first test row ({predicted[0]:.0%}): " + "; ".join(r.text_en for r in example))
    print("原因：" + "；".join(r.text_zh for r in example))
    print()


def main() -> None:
    evaluate(maven)
    evaluate(x_education)


if __name__ == "__main__":
    main()
