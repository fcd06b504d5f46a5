"""``config/vendor.yaml``: who the vendor is, and the branding OEM copies must not show."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from release_pipeline.config_loading import InvalidConfig, config_dir, load_located_yaml, validation_errors


class VendorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    product_name: str = Field(min_length=1)
    branding_terms: tuple[str, ...] = Field(min_length=1)
    portal_url: str
    production_url: str
    docs_portal_url: str


def load_vendor(path: Path | None = None) -> VendorConfig:
    located = load_located_yaml(path or config_dir() / "vendor.yaml")
    try:
        return VendorConfig.model_validate(located.data)
    except ValidationError as exc:
        raise InvalidConfig(validation_errors(exc, VendorConfig, located, (), "vendor")) from None
