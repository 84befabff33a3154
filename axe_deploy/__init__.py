"""axe-deploy: accumulator-aware PTQ to proven-width dataflow accelerators.

``axe_deploy.ModelBundle`` is the public model interface (:mod:`axe_deploy.quant.bundle`); it is
imported on first use so that ``import axe_deploy`` (and the CLI's start) stays light.
"""

__all__ = ["ModelBundle"]


def __getattr__(name):
    if name == "ModelBundle":
        from axe_deploy.quant.bundle import ModelBundle
        return ModelBundle
    raise AttributeError(f"module 'axe_deploy' has no attribute {name!r}")
