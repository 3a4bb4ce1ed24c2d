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
    # FairDARTS (Chu et al., ECCV 2020): the seven CIFAR-10 cells a-g of its README table, from
    # xiaomi-automl/FairDARTS fairdarts/genotypes.py @ 675a0c8c3d614e4fca5587db4b5197cca4437eb0 (the
    # `FairDARTS_a` .. `FairDARTS_g` entries; trained there with `--parse_method threshold`).
    # That file lists kept edges as (op, node, input) triples, 0 to 2 per node (sigmoid > 0.85, at
    # most two), and its evaluation cell (fairdarts/model.py `DCOCell`) concatenates only the nodes
    # that receive an edge. Written here in the two-gene format:
    #   - a node with one kept edge gets ('none', j) (the Zero op) as its second gene, j being the
    #     cell input it did not read (any valid j would do: Zero has no parameters);
    #   - a node with no kept edge (node 3 of the normal cells a, c, e, g) gets two 'none' genes
    #     and is left out of normal_concat, so the cell outputs 3C channels as in the original;
    #   - an edge read from such an empty node (skip_connect from node 3 in c and g) is kept: the
    #     identity of a zero map adds zero, where the original skips that edge.
    # Same parameters and the same function. The original trains them with drop-path on each node's
    # sum: `diffnas train --drop-path-per node` (the default, per op, is DARTS's).
    "FAIR_DARTS_A": cells([("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("none", 0), ("none", 1),
                           ("max_pool_3x3", 0), ("none", 1), ("sep_conv_3x3", 0), ("none", 1)],
                          [("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_5x5", 1),
                           ("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("skip_connect", 0), ("skip_connect", 1)],
                          normal_concat=(2, 4, 5)),
    "FAIR_DARTS_B": cells([("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("none", 0),
                           ("dil_conv_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_5x5", 1), ("none", 0)],
                          [("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_3x3", 1),
                           ("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0)]),
    "FAIR_DARTS_C": cells([("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("none", 0), ("none", 1),
                           ("dil_conv_3x3", 0), ("dil_conv_5x5", 2), ("skip_connect", 3), ("sep_conv_3x3", 0)],
                          [("dil_conv_3x3", 1), ("dil_conv_5x5", 0), ("dil_conv_3x3", 0), ("sep_conv_3x3", 1),
                           ("sep_conv_5x5", 0), ("sep_conv_5x5", 3), ("sep_conv_5x5", 0), ("skip_connect", 1)],
                          normal_concat=(2, 4, 5)),
    "FAIR_DARTS_D": cells([("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_3x3", 1), ("max_pool_3x3", 0),
                           ("dil_conv_3x3", 0), ("dil_conv_3x3", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 1)],
                          [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("avg_pool_3x3", 0), ("dil_conv_5x5", 2),
                           ("dil_conv_3x3", 3), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0), ("skip_connect", 3)]),
    "FAIR_DARTS_E": cells([("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("none", 0), ("none", 1),
                           ("dil_conv_3x3", 1), ("dil_conv_3x3", 2), ("dil_conv_3x3", 0), ("dil_conv_5x5", 1)],
                          [("max_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0),
                           ("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("avg_pool_3x3", 0), ("dil_conv_5x5", 1)],
                          normal_concat=(2, 4, 5)),
    "FAIR_DARTS_F": cells([("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("dil_conv_3x3", 1), ("none", 0),
                           ("sep_conv_5x5", 1), ("none", 0), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1)],
                          [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("dil_conv_3x3", 1),
                           ("dil_conv_3x3", 2), ("max_pool_3x3", 0), ("max_pool_3x3", 0), ("sep_conv_3x3", 1)]),
    "FAIR_DARTS_G": cells([("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("none", 0), ("none", 1),
                           ("skip_connect", 3), ("sep_conv_5x5", 1), ("dil_conv_3x3", 0), ("sep_conv_3x3", 1)],
                          [("avg_pool_3x3", 1), ("skip_connect", 0), ("skip_connect", 2), ("max_pool_3x3", 1),
                           ("sep_conv_5x5", 3), ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 4)],
                          normal_concat=(2, 4, 5)),
}

ALIASES: dict[str, str] = {"DARTS": "DARTS_V2"}  # alias -> name in PUBLISHED (the same object in KNOWN)
