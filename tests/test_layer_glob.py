from axe_deploy.core.layer_glob import for_every_layer, layer_values, match_layer


def test_last_matching_glob_wins_and_default_otherwise():
    settings = {"fc*": 4, "fc2": 6, "conv?": 3}
    assert match_layer(settings, "fc1", 8) == 4
    assert match_layer(settings, "fc2", 8) == 6
    assert match_layer(settings, "conv10", 8) == 8
    assert match_layer(settings, "FC1", 8) == 8  # case-sensitive


def test_layer_values_takes_one_key_of_every_table():
    quant = {"layers": {"fc*": {"weight_bits": 3, "skip": True}, "head": {"skip": False}}}
    assert layer_values(quant, "weight_bits") == {"fc*": 3}
    assert layer_values(quant, "skip") == {"fc*": True, "head": False}
    assert layer_values({}, "skip") == {}


def test_for_every_layer_sets_the_top_and_clears_the_tables():
    quant = {"accumulator_bits": 12, "tile_size": 16, "layers": {"fc*": {"accumulator_bits": 10, "skip": True}}}
    free = for_every_layer(quant, accumulator_bits=0)
    assert free == {"accumulator_bits": 0, "tile_size": 16, "layers": {"fc*": {"skip": True}}}
    assert quant["layers"]["fc*"] == {"accumulator_bits": 10, "skip": True}  # the input is not changed
