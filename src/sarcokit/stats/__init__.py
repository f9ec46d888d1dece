"""Statistics for any Boolean or category column: prevalence, survey designs, agreement, accuracy.

Booleans are three-valued: null means not evaluable and is left out of every denominator,
as are category labels such as ``"indeterminate"``. Results are Polars DataFrames.
"""

from sarcokit.stats.accuracy import (
    auc,
    confusion_counts,
    roc_curve,
    screening_accuracy,
    youden_cutoff,
)
from sarcokit.stats.agreement import (
    cohens_kappa,
    crosstab,
    fleiss_kappa,
    overlap_counts,
    pairwise_kappa,
)
from sarcokit.stats.proportions import category_prevalence, prevalence, proportion_interval
from sarcokit.stats.standardise import age_standardised_prevalence, standard_population
from sarcokit.stats.survey import survey_prevalence

__all__ = [
    "age_standardised_prevalence",
    "auc",
    "category_prevalence",
    "cohens_kappa",
    "confusion_counts",
    "crosstab",
    "fleiss_kappa",
    "overlap_counts",
    "pairwise_kappa",
    "prevalence",
    "proportion_interval",
    "roc_curve",
    "screening_accuracy",
    "standard_population",
    "survey_prevalence",
    "youden_cutoff",
]
