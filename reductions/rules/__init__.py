"""Every reduction rule, imported explicitly (importing a module registers its rule)."""

from reductions.rules import (
    ksat_to_ov,
    ov_to_maxip,
    ov_to_bhcp,
    bhcp_to_gapann,
    ov_to_attention_h,
    ov_to_attention_s,
    gapann_to_attention,
    ov_to_gradient_probe,
    ov_to_gradient_quadrature,
    ov_to_gradient_riemann,
)

__all__ = [
    "ksat_to_ov",
    "ov_to_maxip",
    "ov_to_bhcp",
    "bhcp_to_gapann",
    "ov_to_attention_h",
    "ov_to_attention_s",
    "gapann_to_attention",
    "ov_to_gradient_probe",
    "ov_to_gradient_quadrature",
    "ov_to_gradient_riemann",
]
