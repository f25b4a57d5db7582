"""The CT domain: 3D CT volumes (NIfTI, DICOM) in Hounsfield units with radiology reports."""

from domainclip.domains.ct.domain import CTDomain

__all__ = ["CTDomain"]
