"""Report structuring: findings vocabularies, negation/uncertainty scopes, finding vectors, audit."""

from typing import Any

from domainclip.reports.audit import AuditRow, write_audit_csv
from domainclip.reports.structurer import ReportStructurer, Statement, StructuredReport
from domainclip.reports.vocabulary import Finding, Vocabulary


def __getattr__(name: str) -> Any:
    # Lazy: the agreement table needs scikit-learn, which the structurer itself does not.
    if name == "finding_agreement":
        from domainclip.reports.agreement import finding_agreement

        return finding_agreement
    raise AttributeError(f"module 'domainclip.reports' has no attribute {name!r}")


__all__ = [
    "AuditRow",
    "Finding",
    "ReportStructurer",
    "Statement",
    "StructuredReport",
    "Vocabulary",
    "finding_agreement",
    "write_audit_csv",
]
