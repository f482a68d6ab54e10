from neurodamus.circuit.offsets import gid_offsets, population_hash_id


def test_population_hash_check_values():
    # check values given by the compatibility contract §1.2
    assert population_hash_id("default") == 4034
    assert population_hash_id("All") == 2481


def test_offsets_follow_name_order_and_round_up():
    # maxid 999 -> next block; maxid 1000 -> two blocks (§1.1)
    offsets = gid_offsets({"b": 1000, "a": 999, "c": 5})
    assert offsets == {"a": 0, "b": 1000, "c": 3000}


def test_offsets_small_populations():
    assert gid_offsets({"popA": 9, "popB": 4, "inputs": 0}) == \
        {"inputs": 0, "popA": 1000, "popB": 2000}
