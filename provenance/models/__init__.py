"""Provenance: who owns what, under which licence, and which datasets were built from it.

One module per part of the domain; every model is importable from here, as Django and the rest
of the code import them. The abstract TimeStamped and Job live in core.models.
"""

from core.models import Job, TimeStamped
from provenance.models.datasets import (
    CurationJob,
    Dataset,
    DatasetVersion,
    VersionExclusion,
    VersionMember,
)
from provenance.models.documents import (
    EMBEDDING_DIM,
    Document,
    EmbeddingBatch,
    IngestJob,
    IngestShard,
    Occurrence,
)
from provenance.models.identity import RightsHolder, User
from provenance.models.ledger import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerNode,
    PersonCommitment,
)
from provenance.models.sources import (
    DataSource,
    LicenseRefTerms,
    LicenseSignal,
    OptOutSignal,
    SourceCanary,
    UseClass,
)
from provenance.models.synthesis import SynthesisJob, SyntheticRecord
from provenance.models.training import CanaryTest, CanaryTestRun, ModelCheckpoint, TrainingRun

__all__ = [
    "CanaryTest",
    "CanaryTestRun",
    "CurationJob",
    "DataSource",
    "Dataset",
    "DatasetVersion",
    "Document",
    "EmbeddingBatch",
    "EMBEDDING_DIM",
    "IngestJob",
    "IngestShard",
    "Job",
    "LedgerCheckpoint",
    "LedgerEntry",
    "LedgerNode",
    "LicenseRefTerms",
    "LicenseSignal",
    "ModelCheckpoint",
    "Occurrence",
    "OptOutSignal",
    "PersonCommitment",
    "RightsHolder",
    "SourceCanary",
    "SynthesisJob",
    "SyntheticRecord",
    "TimeStamped",
    "TrainingRun",
    "UseClass",
    "User",
    "VersionExclusion",
    "VersionMember",
]
