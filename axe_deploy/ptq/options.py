"""What the PTQ core offers, as plain data: the algorithms and the options each one takes.

No torch here: a flow file is checked against these names (``axe_deploy.flow.config``)
before anything heavy is imported.
"""

ALGORITHMS = ("rtn", "gpfq", "optq", "spfq")
# Options each algorithm takes, with their defaults:
#   block_size           columns per block of lazy updates (sweep.py)
#   act_order            visit inputs by decreasing H_tt
#   percdamp             OPTQ damping, a fraction of mean(diag H)
#   order                SPFQ order r (r - 1 alignment sweeps)
#   propagate_shrinkage  OPTQ + AXE: feed the shrinkage forward too (False: as A2GPTQ)
#   soft_scale           factor on AXE's l1-ball shrinkage (1: as the paper, 0: hard budget only)
#   passes               sweeps of exact coordinate descent after the walk, re-spending
#                        AXE's budget (0: as the papers); None: 1 under a binding budget,
#                        0 without one, so plain GPFQ/OPTQ stay the published algorithms
#   rescale              AXE: follow c·w, scaled to fit the budget, then refit the
#                        per-channel scale (info.scale); the soft part acts on c·w
#   centre               AXE: objective on centred inputs; the mean output error is left
#                        for the caller to put into the bias (info.centred)
# soft_scale, rescale and centre act only with a binding accumulator_bits.
OPTIONS = {
    "rtn": {"soft_scale": 1.0},
    "gpfq": {"block_size": 128, "act_order": False, "soft_scale": 1.25, "passes": None, "rescale": False,
             "centre": False},
    "optq": {"percdamp": 0.01, "block_size": 128, "act_order": False, "soft_scale": 1.25,
             "propagate_shrinkage": True, "passes": None, "rescale": False, "centre": False},
    "spfq": {"order": 1, "block_size": 128, "soft_scale": 1.25, "rescale": False, "centre": False},
}
