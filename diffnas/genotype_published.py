"""Published cells, as their papers' released code lists them.

Each entry is plain data in the DARTS notation: per intermediate node two (op, input) genes, inputs
0 and 1 being the cell inputs c_{k-2}, c_{k-1} and 2.. the earlier nodes; then the nodes
concatenated into the cell output. `genotype.KNOWN` turns every entry into a checked `Genotype`,
so this module imports nothing from the package and a typo here fails at import, naming the entry.
"""

from __future__ import annotations

FOUR_NODES = (2, 3, 4, 5)  # every node of a 4-node cell concatenated (the DARTS default)


def cells(normal: list[tuple[str, int]], reduce: list[tuple[str, int]],
          normal_concat: tuple[int, ...] = FOUR_NODES, reduce_concat: tuple[int, ...] = FOUR_NODES) -> dict:
    """One entry: the fields of `genotype.from_dict`."""
    return {"normal": normal, "normal_concat": normal_concat, "reduce": reduce, "reduce_concat": reduce_concat}


PUBLISHED: dict[str, dict] = {
    # quark0/darts cnn/genotypes.py: first-order (V1) and second-order (V2) CIFAR-10 cells
    "DARTS_V1": cells([("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                       ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
                      [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                       ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]),
    "DARTS_V2": cells([("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                       ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
                      [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                       ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]),
    # yuhuixu1993/PC-DARTS genotypes.py
    "PC_DARTS_CIFAR": cells([("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
                             ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
                            [("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
                             ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)]),
    "PC_DARTS_IMAGENET": cells([("skip_connect", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 1),
                                ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("dil_conv_5x5", 4)],
                               [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 2), ("max_pool_3x3", 1),
                                ("sep_conv_3x3", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 3)]),
    # chenxin061/pdarts genotypes.py
    "PDARTS": cells([("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
                     ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)],
                    [("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
                     ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)]),
}

ALIASES: dict[str, str] = {"DARTS": "DARTS_V2"}  # alias -> name in PUBLISHED (the same object in KNOWN)
