"""Outcomes by sarcopenia category, compared with R's survival and survey packages.

Expected values come from R (Debian r-cran-survival, r-cran-survey) run in the test on the same
rows: survival's classic data sets lung and veteran (exported from R), and a generated cohort
with sarcopenia categories, tied follow-up times and a competing risk. Agreement is to 1e-6.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rreference import agrees, r_table, run_r
from sarcokit.stats.outcomes import (
    cox_model,
    cumulative_incidence,
    harrell_c,
    hazard_ratios_by_definition,
    incidence_rate,
    kaplan_meier,
    logistic_model,
    logrank_test,
    survey_cox_model,
    transitions,
)

TOL = 1e-6
CATEGORIES = ["no_sarcopenia", "probable_sarcopenia", "sarcopenia", "severe_sarcopenia"]


def lung() -> pl.DataFrame:
    return r_table("lung", "library(survival)").with_columns(
        dead=pl.col("status") == 2, female=pl.col("sex") == 2
    )


def veteran() -> pl.DataFrame:
    return r_table("veteran", "library(survival)")


def cohort(n: int = 600) -> pl.DataFrame:
    """Older adults with an EWGSOP2-like category; death hazard rises with severity and age;
    follow-up in whole months (ties), administrative censoring at 60 months, a competing
    cause, falls, a survey design (4 strata × 6 PSUs, unequal weights), some indeterminate."""
    rng = np.random.default_rng(2026)
    category = rng.choice(CATEGORIES, n, p=[0.55, 0.2, 0.15, 0.1])
    age = rng.uniform(60, 90, n).round(0)
    male = rng.random(n) < 0.45
    log_hr = {"no_sarcopenia": 0.0, "probable_sarcopenia": 0.3, "sarcopenia": 0.6}
    lp = np.array([log_hr.get(c, 0.9) for c in category]) + 0.05 * (age - 75) + 0.2 * male
    death = rng.exponential(80 / np.exp(lp))
    other = rng.exponential(150, n)
    time = np.minimum(np.minimum(death, other), 60)
    status = np.where(time == 60, 0, np.where(death < other, 1, 2))
    months = np.ceil(time).astype(np.int64)
    falls = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.5 * (category != "no_sarcopenia"))))
    category = category.astype(object)
    category[rng.choice(n, 15, replace=False)] = "indeterminate"
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "ewgsop2_category": category.astype(str),
            "sarcopenia": [c in ("sarcopenia", "severe_sarcopenia") for c in category],
            "awgs_sarcopenia": rng.random(n) < np.where(lp > 0.5, 0.5, 0.1),
            "age": age,
            "male": male.astype(int),
            "months": months,
            "dead": (status == 1).astype(int),
            "status": status,
            "falls": falls.astype(int),
            "stratum": np.repeat(np.arange(4), n // 4),
            "psu": np.tile(np.repeat(np.arange(6), n // 24), 4),
            "w": rng.uniform(0.5, 3.0, n).round(3),
        }
    ).with_columns(
        pl.when(pl.col("ewgsop2_category") == "indeterminate")
        .then(None)
        .otherwise(pl.col("sarcopenia"))
        .alias("sarcopenia")
    )


R_COX = """
library(survival)
d <- read.csv("d.csv")
out <- c()
for (ti in c("efron", "breslow")) {
  f <- coxph(FORMULA, data = d, ties = ti, robust = TRUE)
  z <- cox.zph(f)$table
  v <- c(f$coefficients, sqrt(diag(f$naive.var)), sqrt(diag(f$var)), f$loglik[2],
         f$concordance["concordance"], z[, "chisq"], f$n, f$nevent)
  names(v) <- c(paste0("coef", seq_along(f$coefficients)), paste0("se", seq_along(f$coefficients)),
                paste0("robust", seq_along(f$coefficients)), "loglik", "c",
                paste0("zph", seq_len(nrow(z))), "n", "events")
  names(v) <- paste(ti, names(v), sep = ".")
  out <- c(out, v)
}
"""


def compare_cox(data: pl.DataFrame, formula: str, **model: object) -> int:
    """Fit both tie methods here and in R; assert agreement; return how many numbers agreed."""
    reference = run_r(R_COX.replace("FORMULA", formula), {"d": data})
    compared = 0
    for ties in ("efron", "breslow"):
        fit = cox_model(data, ties=ties, robust=True, **model)  # type: ignore[arg-type]
        key = f"{ties}."
        for i, row in enumerate(fit.terms.iter_rows(named=True), start=1):
            assert agrees(row["coef"], reference[f"{key}coef{i}"]), (ties, i)
            assert agrees(row["se"], reference[f"{key}se{i}"]), (ties, i)
            assert agrees(row["robust_se"], reference[f"{key}robust{i}"])
            compared += 3
        assert agrees(fit.loglik, reference[f"{key}loglik"])
        assert agrees(fit.concordance, reference[f"{key}c"])
        for i, chisq in enumerate(fit.ph_test["chisq"], start=1):
            assert agrees(chisq, reference[f"{key}zph{i}"]), (ties, "zph", i)
            compared += 1
        assert (fit.n, fit.events) == (reference[f"{key}n"], reference[f"{key}events"])
        compared += 2
    return compared


def test_cox_lung_matches_coxph() -> None:
    # ph.ecog is missing for one patient: that row is excluded and counted.
    data = lung()
    assert compare_cox(
        data,
        "Surv(time, status == 2) ~ I(sex == 2) + age + ph.ecog",
        time="time",
        event="dead",
        exposure="female",
        covariates=["age", "ph.ecog"],
    )
    fit = cox_model(data, "time", "dead", "female", ["age", "ph.ecog"])
    assert fit.n_excluded == 1


def test_cox_veteran_category_exposure_matches_coxph() -> None:
    data = veteran()
    assert compare_cox(
        data,
        "Surv(time, status) ~ relevel(factor(celltype), 'squamous') + karno + age + trt",
        time="time",
        event="status",
        exposure="celltype",
        covariates=["karno", "age", "trt"],
        reference="squamous",
    )


def test_cox_generated_cohort_categories_match_coxph() -> None:
    data = cohort().filter(pl.col("ewgsop2_category") != "indeterminate")
    assert compare_cox(
        data,
        "Surv(months, dead) ~ relevel(factor(ewgsop2_category), 'no_sarcopenia') + age + male",
        time="months",
        event="dead",
        exposure="ewgsop2_category",
        covariates=["age", "male"],
    )


def test_cluster_robust_se_matches_coxph() -> None:
    reference = run_r(
        "library(survival)\nf <- coxph(Surv(time, status == 2) ~ I(sex == 2) + age"
        " + cluster(inst), data = lung)\n"
        "out <- setNames(c(sqrt(diag(f$var)), f$n), c('1', '2', '3'))\n"
    )
    fit = cox_model(lung(), "time", "dead", "female", ["age"], cluster="inst", robust=True)
    for got, expected in zip(fit.terms["robust_se"], (reference["1"], reference["2"]), strict=True):
        assert agrees(got, expected)
    assert fit.n == reference["3"]


R_KM = """
library(survival)
d <- read.csv("d.csv")
s <- survfit(Surv(time, event) ~ group, data = d)
keep <- s$n.event > 0
out <- c(setNames(s$surv[keep], paste0("s", seq_len(sum(keep)))),
         setNames(s$std.err[keep], paste0("e", seq_len(sum(keep)))),
         setNames(s$lower[keep], paste0("l", seq_len(sum(keep)))),
         setNames(s$upper[keep], paste0("u", seq_len(sum(keep)))),
         setNames(s$n.risk[keep], paste0("r", seq_len(sum(keep)))),
         setNames(s$time[keep], paste0("t", seq_len(sum(keep)))),
         chisq = survdiff(Surv(time, event) ~ group, data = d)$chisq)
"""


@pytest.mark.parametrize("dataset", ["lung", "cohort"])
def test_kaplan_meier_and_logrank_match_survfit(dataset: str) -> None:
    if dataset == "lung":
        data = lung().select("time", event=pl.col("dead").cast(pl.Int64), group="sex")
    else:
        data = (
            cohort()
            .filter(pl.col("ewgsop2_category") != "indeterminate")
            .select(time="months", event="dead", group="ewgsop2_category")
        )
    data = data.with_columns(pl.col("group").cast(pl.String))
    reference = run_r(R_KM, {"d": data})
    km = kaplan_meier(data, "time", "event", group="group")
    assert km.height == sum(1 for k in reference if k.startswith("s"))
    for i, row in enumerate(km.iter_rows(named=True), start=1):
        assert row["time"] == reference[f"t{i}"]
        assert row["n_risk"] == reference[f"r{i}"]
        assert agrees(row["survival"], reference[f"s{i}"])
        expected_se = reference[f"e{i}"]
        if np.isfinite(expected_se):
            assert agrees(row["se_log"], expected_se)
            assert agrees(row["ci_low"], reference[f"l{i}"])
            assert agrees(row["ci_high"], reference[f"u{i}"])
    test = logrank_test(data, "time", "event", "group")
    assert agrees(test.chisq, reference["chisq"])


def test_aalen_johansen_matches_survfit_multistate() -> None:
    data = cohort().select(time="months", status="status")
    reference = run_r(
        "library(survival)\nd <- read.csv('d.csv')\n"
        "s <- survfit(Surv(time, factor(status, 0:2)) ~ 1, data = d)\n"
        "keep <- rowSums(s$n.event) > 0\n"
        "out <- c(setNames(s$pstate[keep, 2], paste0('a', seq_len(sum(keep)))),"
        " setNames(s$pstate[keep, 3], paste0('b', seq_len(sum(keep)))),"
        " setNames(s$time[keep], paste0('t', seq_len(sum(keep)))))\n",
        {"d": data},
    )
    cif = cumulative_incidence(data, "time", "status")
    for cause, prefix in ((1, "a"), (2, "b")):
        part = cif.filter(pl.col("cause") == cause)
        expected = [reference[f"{prefix}{i}"] for i in range(1, part.height + 1)]
        assert part["time"].to_list() == [reference[f"t{i}"] for i in range(1, part.height + 1)]
        for got, want in zip(part["incidence"], expected, strict=True):
            assert agrees(got, want), (cause, got, want)


def test_harrell_c_by_hand() -> None:
    # Pairs usable: (1,2), (1,3), (1,4), (3,4): 1 dies first with risk 3 > 2, 1, 2: concordant
    # ×3; 3 (risk 1) dies before 4 (risk 2): discordant. C = 3/4.
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([1.0, 0.0, 1.0, 0.0])
    risk = np.array([3.0, 2.0, 1.0, 2.0])
    assert harrell_c(time, event, risk) == pytest.approx(0.75)


def test_hazard_ratios_side_by_side_match_coxph() -> None:
    data = cohort()
    table = hazard_ratios_by_definition(
        data,
        "months",
        "dead",
        {"ewgsop2": "sarcopenia", "awgs2019": "awgs_sarcopenia"},
        ["age", "male"],
    )
    reference = run_r(
        "library(survival)\nd <- read.csv('d.csv')\nout <- c()\n"
        "for (v in c('sarcopenia', 'awgs_sarcopenia')) {\n"
        "  f <- coxph(as.formula(paste('Surv(months, dead) ~', v, '+ age + male')), data = d)\n"
        "  ci <- exp(confint(f))\n"
        "  out <- c(out, setNames(c(exp(f$coefficients[1]), ci[1, ], f$concordance['concordance'],"
        " f$n), paste(v, c('hr', 'lo', 'hi', 'c', 'n'))))\n}\n",
        # 0/1 for R; the null (indeterminate) rows become NA there, excluded as here.
        {"d": data.with_columns(pl.col("sarcopenia", "awgs_sarcopenia").cast(pl.Int64))},
    )
    for row, column in zip(
        table.iter_rows(named=True), ("sarcopenia", "awgs_sarcopenia"), strict=True
    ):
        assert agrees(row["hr"], reference[f"{column} hr"])
        assert agrees(row["ci_low"], reference[f"{column} lo"])
        assert agrees(row["ci_high"], reference[f"{column} hi"])
        assert agrees(row["concordance"], reference[f"{column} c"])
        assert row["n"] == reference[f"{column} n"]
    assert table["n_excluded"].to_list() == [15, 0]


R_LOGISTIC = """
library(survey)
d <- read.csv("d.csv")
d <- d[d$ewgsop2_category != "indeterminate", ]
d$cat <- relevel(factor(d$ewgsop2_category), "no_sarcopenia")
# R's IRLS stops at a relative deviance change of 1e-8 by default; tighter, so that both
# sides report the same maximum.
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
g <- glm(falls ~ cat + age + male, family = binomial, data = d, control = ctl)
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d, nest = TRUE)
s <- svyglm(falls ~ cat + age + male, design = des, family = quasibinomial, control = ctl)
out <- c(setNames(coef(g), paste0("b", 1:6)), setNames(sqrt(diag(vcov(g))), paste0("se", 1:6)),
         setNames(coef(s), paste0("sb", 1:6)), setNames(sqrt(diag(vcov(s))), paste0("sse", 1:6)),
         df = degf(des))
"""


def test_logistic_and_survey_logistic_match_glm_and_svyglm() -> None:
    data = cohort()
    reference = run_r(R_LOGISTIC, {"d": data})
    plain = logistic_model(data, "falls", "ewgsop2_category", ["age", "male"])
    assert plain.n_excluded == 15
    survey = logistic_model(
        data,
        "falls",
        "ewgsop2_category",
        ["age", "male"],
        weight="w",
        strata="stratum",
        psu="psu",
    )
    for i in range(6):
        assert agrees(plain.terms["coef"][i], reference[f"b{i + 1}"])
        assert agrees(plain.terms["se"][i], reference[f"se{i + 1}"])
        assert agrees(survey.terms["coef"][i], reference[f"sb{i + 1}"])
        assert agrees(survey.terms["se"][i], reference[f"sse{i + 1}"])
    assert survey.terms["df"][0] == reference["df"]


def test_transitions_and_incidence_by_hand() -> None:
    waves = pl.DataFrame(
        {
            "id": [1, 1, 1, 2, 2, 2, 3, 3, 4, 4],
            "year": [0.0, 2.0, 4.0, 0.0, 2.0, 4.0, 0.0, 2.0, 0.0, 2.0],
            "category": ["no", "no", "sarc", "no", "sarc", "sarc", "sarc", "sarc", "no", "no"],
        }
    ).with_columns(case=pl.col("category") == "sarc")
    moves = transitions(waves, "id", "year", "category")
    first = moves.filter(pl.col("from_wave") == 0.0)
    # Wave 0 → 2: no→no (1, 4), no→sarc (2), sarc→sarc (3).
    assert first.select("from", "to", "count").rows() == [
        ("no", "no", 2),
        ("no", "sarc", 1),
        ("sarc", "sarc", 1),
    ]
    assert first.filter(pl.col("from") == "no")["share"].to_list() == pytest.approx([2 / 3, 1 / 3])
    rate = incidence_rate(waves, "id", "year", "case").row(0, named=True)
    # Free at baseline: 1, 2, 4. Subject 1: onset between 2 and 4 → 3 years; subject 2: onset
    # between 0 and 2 → 1 year; subject 4: 2 years without. 2 cases / 6 person-years.
    assert (rate["subjects"], rate["cases"], rate["person_years"]) == (3, 2, 6.0)
    assert rate["rate"] == pytest.approx(1000 * 2 / 6)
    # Exact Poisson limits for 2 events: χ²(0.025, 4)/2 = 0.242209, χ²(0.975, 6)/2 = 7.224688.
    assert rate["ci_low"] == pytest.approx(1000 * 0.242209 / 6, abs=1e-3)
    assert rate["ci_high"] == pytest.approx(1000 * 7.224688 / 6, abs=1e-3)


R_SVYCOX = """
library(survey)
library(survival)
d <- read.csv("d.csv")
d <- d[d$ewgsop2_category != "indeterminate", ]
d$cat <- relevel(factor(d$ewgsop2_category), "no_sarcopenia")
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d, nest = TRUE)
# svycoxph hands its arguments to coxph unevaluated: the tie method goes by its other name.
e <- svycoxph(Surv(months, dead) ~ cat + age + male, design = des, method = "efron")
b <- svycoxph(Surv(months, dead) ~ cat + age + male, design = des, method = "breslow")
out <- c()
for (f in list(e, b)) {
  ti <- if (identical(f, e)) "efron" else "breslow"
  out <- c(out, setNames(c(coef(f), sqrt(diag(vcov(f)))),
                         paste(ti, c(paste0("b", 1:5), paste0("se", 1:5)))))
}
"""


def test_survey_cox_matches_svycoxph() -> None:
    data = cohort()
    reference = run_r(R_SVYCOX, {"d": data})
    for ties in ("efron", "breslow"):
        fit = survey_cox_model(
            data,
            "months",
            "dead",
            "ewgsop2_category",
            ["age", "male"],
            weight="w",
            strata="stratum",
            psu="psu",
            ties=ties,
        )
        for i in range(5):
            assert agrees(fit.terms["coef"][i], reference[f"{ties} b{i + 1}"])
            assert agrees(fit.terms["robust_se"][i], reference[f"{ties} se{i + 1}"])
    # With weight 1 and one PSU per row the weighted fit is the ordinary one.
    ones = data.with_columns(one=pl.lit(1.0)).filter(pl.col("ewgsop2_category") != "indeterminate")
    plain = cox_model(ones, "months", "dead", "ewgsop2_category", ["age", "male"])
    weighted = survey_cox_model(
        ones, "months", "dead", "ewgsop2_category", ["age", "male"], weight="one"
    )
    np.testing.assert_allclose(weighted.terms["coef"], plain.terms["coef"], atol=1e-9)
    np.testing.assert_allclose(weighted.loglik, plain.loglik, atol=1e-9)
