"""domainclip."""
