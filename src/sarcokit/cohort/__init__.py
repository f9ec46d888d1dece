"""Cohort analysis: read cohort files, map their columns to the subject record, assess them."""
