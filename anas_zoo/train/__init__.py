"""Training core: data, attentive sampling, losses, the sandwich-rule loop, BN calibration."""
