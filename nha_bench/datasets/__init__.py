"""Datasets: the subject folder format, its validator, and the dataset builders."""

from nha_bench.datasets.format import LABELS, Subject, SubjectMeta, SubjectWriter
from nha_bench.datasets.validate import Problem, find_subjects, validate_subject

__all__ = ["LABELS", "Problem", "Subject", "SubjectMeta", "SubjectWriter", "find_subjects", "validate_subject"]

from nha_bench.datasets.catalog import load_subjects  # noqa: E402  (registers the named datasets)

__all__ += ["load_subjects"]
